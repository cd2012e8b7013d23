#pragma once
// Dialing through an exit: direct from a source address, HTTP CONNECT (plain or
// TLS to the proxy), SOCKS5 / SOCKS5h. Runs on the calling shard's executor.
//
// Three modes: `tunnel` yields a byte stream to the target (CONNECT/SOCKS5 done);
// `forward` yields a stream to the HTTP proxy itself for absolute-form requests
// (for direct and SOCKS exits it is the same as tunnel); `handshake` only proves the
// exit is alive — TCP (and TLS) to the proxy, SOCKS5 greeting and login — without
// reaching any target (host/port ignored; a direct exit checks its source address).
//
// Direct exits connect from their source address (the default route without one; an
// address inside the prefix for an IPv6 prefix exit, proto/ipv6_prefix.hpp) to the
// target's addresses of the source's family only, racing them (happy eyeballs).

#include <boost/asio/ssl.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "net/resolver.hpp"
#include "net/stream.hpp"
#include "pool/failure.hpp"
#include "pool/pool.hpp"
#include "proto/socks5.hpp"

namespace exitpool::net {

enum class dial_mode { tunnel, forward, handshake };

struct dial_options {
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  asio::ssl::context* tls_verified = nullptr;  // for https:// exits with tls_verify
  asio::ssl::context* tls_insecure = nullptr;  // for https:// exits with tls_verify=false
  // Checks every address the gateway resolves itself (direct and socks5:// exits):
  // returns why it is refused, or "" (unset: everything allowed).
  std::function<std::string(const asio::ip::address&, std::uint16_t)> check_address;
  // The calling shard's resolver, for the names the gateway resolves itself (targets of
  // direct and socks5:// exits, exits' own host names). Null: only IP literals can be dialed.
  net::resolver* resolver = nullptr;
  // Direct exits, a target with several addresses: how long one connection attempt
  // leads before the next address (the other family first) is tried beside it
  // (RFC 8305's Connection Attempt Delay; net/happy_eyeballs.hpp).
  std::chrono::milliseconds happy_eyeballs_delay{250};
  // IPv6 prefix exits: a hash of the sticky session's key, which picks the source address
  // the session keeps; unset: a random address in the prefix per connection.
  std::optional<std::uint64_t> source_key;
};

struct dial_result {
  stream upstream;                            // valid on success
  pool::failure error = pool::failure::none;  // a dial failure (pool::is_dial_failure), or target_prohibited
                                              // (dns_error / dns_timeout: the name did not resolve)
  bool exit_fault = false;                    // the exit itself failed (counts against its health)
  std::string detail;                         // one line for X-Exitpool-Error and logs (no secrets)
  // The reply a SOCKS5 client should get when the exit's own answer is more precise than
  // the failure (the SOCKS5 exit's reply code; 0x02 for a CONNECT refused with 403).
  proto::socks5::reply socks_reply = proto::socks5::reply::general_failure;
  std::string leftover;  // bytes the exit sent after its handshake reply
};

awaitable<dial_result> dial(const pool::exit& ex, std::string host, std::uint16_t port, dial_mode mode,
                            dial_options opts);

}  // namespace exitpool::net
