#pragma once
// What went wrong with a request through the pool: the one error vocabulary of the
// pool, the dialers, the gateway, fetch and the health checks.
//
// It is owned here, below every protocol, and mapped to each edge in one table there:
//  - HTTP status, `Proxy-Status` and `X-Exitpool-Error`: gateway/errors.hpp (http_error_for)
//  - SOCKS5 reply codes: gateway/errors.hpp (socks_reply_for)
//  - metrics labels: admin/metrics.hpp (outcome_of, dial_failure_index)
// The names below are the RFC 9209 Proxy-Status error types where one fits
// (proxy_status_name); a pool refusal has no such type and says which refusal it is.
// Pure: no I/O, any thread.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace exitpool::pool {

enum class failure : std::uint8_t {
  none,
  // The pool refused: no exit was dialed.
  no_match,     // no exit in the pool has the requested tags
  exhausted,    // every matching exit was already tried for this request
  no_capacity,  // matching exits are banned for the host, rate-limited or busy, past the wait
  queue_full,   // no exit has capacity now and the wait queue is full
  // The gateway's access policy refused the target (its name, or an address it resolved to).
  target_prohibited,
  // A dial through an exit failed.
  dns_error,                  // the target name did not resolve (NXDOMAIN, NODATA, SERVFAIL, ...)
  dns_timeout,                // no DNS answer within the lookup timeout
  connection_refused,         // refused (by the proxy, or by the target for direct exits)
  connection_timeout,         // the dial deadline passed
  destination_unavailable,    // the proxy was reached but could not reach the target
  destination_ip_unroutable,  // address family mismatch, unreachable network
  tls_protocol_error,         // the TLS handshake to an https:// proxy failed
  tls_certificate_error,      // the proxy's certificate did not verify
  proxy_auth_failed,          // the exit rejected our credentials
  http_protocol_error,        // the exit answered garbage (handshake or response head)
  connection_terminated,      // closed during the handshake or while the request was sent
  // An exit's answer to a forwarded request.
  response_timeout,     // no response head within the response timeout
  response_incomplete,  // closed before the response head was complete
  // The client's side.
  bad_request,   // malformed or unsupported request (400/414/431/501/505, SOCKS5 0x07/0x08)
  auth_failed,   // missing or wrong credentials, unknown option in the username
  client_limit,  // too many connections for this user
  overloaded,    // too many client connections to the gateway
};
inline constexpr std::size_t failure_count = static_cast<std::size_t>(failure::overloaded) + 1;

// Stable snake_case name, for logs and labels ("no_match", "connection_refused").
std::string_view failure_name(failure f);

// The RFC 9209 Proxy-Status error type for `f`: "connection_refused",
// "destination_ip_prohibited", "http_response_timeout", ... ; "destination_unavailable" for
// the pool's refusals, "connection_limit_reached" for capacity refusals, "" for none.
std::string_view proxy_status_name(failure f);

// The failure happened while dialing through an exit (the ones counted per dial).
constexpr bool is_dial_failure(failure f) {
  return f >= failure::dns_error && f <= failure::connection_terminated;
}

}  // namespace exitpool::pool
