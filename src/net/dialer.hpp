#pragma once
// Dialing through an exit: direct from a source address, HTTP CONNECT (plain or
// TLS to the proxy), SOCKS5 / SOCKS5h. Runs on the calling shard's executor.
//
// Three modes: `tunnel` yields a byte stream to the target (CONNECT/SOCKS5 done);
// `forward` yields a stream to the HTTP proxy itself for absolute-form requests
// (for direct and SOCKS exits it is the same as tunnel); `handshake` only proves the
// exit is alive — TCP (and TLS) to the proxy, SOCKS5 greeting and login — without
// reaching any target (host/port ignored; a direct exit checks its source address).

#include <boost/asio/ssl.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "net/stream.hpp"
#include "pool/pool.hpp"
#include "proto/socks5.hpp"

namespace exitpool::net {

enum class dial_mode { tunnel, forward, handshake };

// What went wrong, in the vocabulary of RFC 9209 Proxy-Status error types.
enum class dial_error {
  none,
  dns_error,                  // target name did not resolve
  connection_refused,         // refused (by the proxy, or by the target for direct exits)
  connection_timeout,         // the dial deadline passed
  destination_unavailable,    // proxy/SOCKS reached but could not reach the target
  destination_ip_unroutable,  // address family mismatch, unreachable network
  destination_ip_prohibited,  // the target's address is refused by the gateway's access policy
  tls_protocol_error,         // TLS handshake to an https:// proxy failed
  tls_certificate_error,      // the proxy's certificate did not verify
  proxy_auth_failed,          // the exit rejected our credentials
  http_protocol_error,        // the exit answered garbage
  connection_terminated,      // closed during the handshake
};
const char* proxy_status_error(dial_error e);

struct dial_options {
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  asio::ssl::context* tls_verified = nullptr;  // for https:// exits with tls_verify
  asio::ssl::context* tls_insecure = nullptr;  // for https:// exits with tls_verify=false
  // Checks every address the gateway resolves itself (direct and socks5:// exits):
  // returns why it is refused, or "" (unset: everything allowed).
  std::function<std::string(const asio::ip::address&, std::uint16_t)> check_address;
};

struct dial_result {
  stream upstream;  // valid on success
  dial_error error = dial_error::none;
  bool exit_fault = false;  // the exit itself failed (counts against its health)
  std::string detail;       // one line for X-Exitpool-Error and logs (no secrets)
  proto::socks5::reply socks_reply = proto::socks5::reply::general_failure;  // for SOCKS5 clients
  std::string leftover;  // bytes the exit sent after its handshake reply
};

awaitable<dial_result> dial(const pool::exit& ex, std::string host, std::uint16_t port, dial_mode mode,
                            dial_options opts);

// Maps a dial error to the SOCKS5 reply a client should get.
proto::socks5::reply socks_reply_for(const dial_result& r);

}  // namespace exitpool::net
