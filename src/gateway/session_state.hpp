#pragma once
// The state of one client connection, shared by its coroutines (gateway/session.cpp:
// the fronts; gateway/forward.cpp: forwarding) and by its watchdog timer; plus the two
// helpers every front uses to count what it answers (error_reply, request_record).
//
// Internal to the gateway. A session lives on the shard that accepted its socket and
// is touched only from that shard's thread; it is held by shared_ptr so the watchdog's
// pending wait and a handed-off tunnel keep it alive.

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "admin/metrics.hpp"
#include "gateway/admission.hpp"
#include "gateway/errors.hpp"
#include "gateway/server.hpp"
#include "net/relay.hpp"
#include "net/stream.hpp"
#include "pool/attempt.hpp"

namespace exitpool::gateway {

struct session : std::enable_shared_from_this<session> {
  session(net::tcp::socket s, shard_state& sh);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  shard_state& shard;
  const int open_connections;    // client connections open when this one arrived, itself included
  session* prev_live = nullptr;  // this shard's sessions (see close_idle_sessions)
  session* next_live = nullptr;
  net::stream client;
  net::stream upstream;
  std::string buf;  // bytes read from the client and not consumed yet
  net::activity act;
  net::clock::duration limit{};  // length of the current phase (see arm); zero: none
  net::clock::time_point phase_start{};
  // When the pending timer wait ends; max(): no wait pending.
  net::clock::time_point scheduled = net::clock::time_point::max();
  bool absolute_deadline = false;
  bool upstream_only = false;
  bool upstream_timed_out = false;
  bool between_requests = false;  // kept alive, waiting for the next request's first byte
  user_slot slot;                 // this connection counts against its user's limit
  // From the listener and the client's address (see admission_rules).
  const proto::route_params* port_options = nullptr;
  bool allowlisted = false;
  bool done = false;
  bool timed_out = false;
  net::asio::steady_timer timer;
  // A tunnel runs on after the session's coroutine has returned, driven by the relay's
  // handlers (plain_relay, or tls_relay for a TLS exit); these keep its exit (and the exit's
  // in-flight count) until it ends.
  std::unique_ptr<net::plain_relay> relay;
  std::unique_ptr<net::tls_relay> tls_relay;
  pool::attempt tunnel_attempt;
  admin::client_protocol protocol = admin::client_protocol::http;

  const config& cfg() const { return shard.shared.cfg; }
  admin::shard_metrics& metrics() { return *shard.metrics; }

  // Starts a phase that may last `d` in all (absolute: request heads and handshakes,
  // so a client trickling one byte a second is still cut at the deadline) or whose
  // silences may last `d` (inactivity: bodies, responses, tunnels, keep-alive waits).
  // Zero disables the watchdog (dialing has its own deadline).
  //
  // The timer is lazy: a phase never moves a pending wait later, it only brings it
  // forward. A wait that ends early re-reads the deadline and sleeps again, so a
  // request's several phases cost no timer operations in the common case.
  void arm(net::clock::duration d, bool absolute = false) {
    limit = d;
    absolute_deadline = absolute;
    upstream_only = false;
    act.touch();
    phase_start = act.last;
    if (d != net::clock::duration::zero() && phase_start + d < scheduled) {
      wait_until(phase_start + d);
    }
  }
  void arm_deadline(net::clock::duration d) { arm(d, true); }
  // A deadline for the upstream alone (a response head): on expiry only the upstream is
  // closed and upstream_timed_out set, so the session can still answer or retry.
  void arm_upstream_deadline(net::clock::duration d) {
    arm(d, true);
    upstream_only = true;
    upstream_timed_out = false;
  }
  net::clock::time_point deadline() const { return (absolute_deadline ? phase_start : act.last) + limit; }

  void wait_until(net::clock::time_point t);
  // Closes both sides and stops the watchdog.
  void finish();
  // Closes the session's sockets once it has been inactive for longer than its phase
  // allows; the session's pending I/O then fails and it unwinds.
  void on_timer();

  // Reads more client bytes onto buf. False on EOF, error or timeout.
  net::awaitable<bool> read_client();
  net::awaitable<bool> write_client(std::string_view data);
};

// Counts the response in the metrics and renders it.
std::string error_reply(session& s, const http_error& e);

// Counts one request (a CONNECT, a SOCKS5 CONNECT, or one forwarded HTTP request)
// with its outcome when it goes out of scope.
struct request_record {
  explicit request_record(session& s) : s_(s) {}
  request_record(const request_record&) = delete;
  request_record& operator=(const request_record&) = delete;
  ~request_record() { s_.metrics().on_request(s_.protocol, outcome); }
  admin::request_outcome outcome = admin::request_outcome::client_error;

 private:
  session& s_;
};

}  // namespace exitpool::gateway
