#pragma once
// The attempt loop: from a client's routing options and target to a connection through
// an exit. Checks the access policy, asks the shard's pool driver for an exit
// (pool/attempt.hpp), waits within --queue-timeout when every matching exit is out of
// capacity, dials through the exit (net/dialer.hpp) and tries further exits on failure
// (--retries). A forwarded request may ride an idle kept-alive connection instead of a
// fresh dial (gateway/upstream_pool.hpp), looked up only after the exit is picked.
//
// Runs on the shard that serves the client (it uses the shard's driver and idle pool).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "gateway/errors.hpp"
#include "gateway/server.hpp"
#include "net/dialer.hpp"
#include "pool/attempt.hpp"
#include "proto/socks5.hpp"
#include "proto/user_params.hpp"

namespace exitpool::gateway {

struct connect_outcome {
  net::dial_result dial;  // on success: the upstream and leftover bytes
  // The exit and its lease (kept alive with its snapshot). Tunnels: completed here, at the
  // dial. Forwarded requests: completed by the caller once the exit's answer is judged.
  pool::attempt attempt;
  std::chrono::microseconds dial_latency{-1};                    // negative: no dial (a reused connection)
  bool reused = false;                                           // an idle kept-alive connection, not a fresh dial
  std::string reuse_key;                                         // set when the connection may be kept alive afterwards
  http_error error;                                              // kind none on success
  proto::socks5::reply socks = proto::socks5::reply::succeeded;  // the SOCKS5 client's reply for `error`
};

struct connect_options {
  bool keep_alive = false;   // the connection may be kept alive afterwards: reuse_key is set
  bool allow_reuse = false;  // an idle kept-alive connection may serve instead of a dial
  bool queue = true;         // wait for capacity (false: a held ban answer is waiting instead)
};

// Picks an exit for (params, host) and dials through it, trying further exits on
// failure. `tried` carries exits already used by this request (ban retries), so they
// are never picked again; exits that fail here are added to it. Errors come back in
// `error` and `socks`, ready for either kind of client.
net::awaitable<connect_outcome> connect_via_pool(shard_state& shard, const proto::route_params& params,
                                                 std::string host, std::uint16_t port, net::dial_mode mode,
                                                 std::vector<const pool::exit*>& tried, connect_options opts = {});

}  // namespace exitpool::gateway
