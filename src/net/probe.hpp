#pragma once
// One check of one exit: either a handshake (reach the exit and log in, no target),
// or a GET of a check URL through it. Used by `exitpool check` (cli/check.cpp) and
// by the gateway's active health checks (gateway/health.hpp).
//
// Threading: probe_exit runs on the calling coroutine's executor (one shard); the
// exit and the TLS contexts in `opts` must outlive it. Everything else is pure.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "net/dialer.hpp"
#include "net/stream.hpp"
#include "pool/pool.hpp"
#include "proto/http_head.hpp"

namespace exitpool::net {

// A check URL, parsed once at startup.
struct probe_target {
  std::string url;                // as given: the absolute-form sent to HTTP proxy exits
  proto::absolute_target target;  // where to connect, and the origin-form sent inside tunnels
  std::string host_header;        // authority for the Host header (port only when not 80)
};

struct probe_target_parse {
  std::optional<probe_target> target;  // set on success
  std::string error;                   // on failure: one line, without the URL itself
};

// "http://host[:port][/path][?query]". Anything else (https://, userinfo, a
// fragment, no host) is refused with a reason.
probe_target_parse parse_probe_target(std::string_view url);

struct probe_result {
  bool ok = false;                           // handshake done, or the target answered 2xx
  double latency_ms = 0;                     // the whole check, or until the failure
  double dial_ms = -1;                       // dial (connect + proxy handshake); negative: it did not finish
  int status = 0;                            // HTTP status from the target; 0: none (or handshake check)
  std::string exit_ip;                       // first body line, when it is an IP address
  std::string body_line;                     // first body line, printable, at most 200 bytes
  std::string error;                         // one printable line, no secrets; empty when ok
  pool::failure kind = pool::failure::none;  // what failed, when known
  bool exit_fault = false;                   // the failure is the exit's (counts against its health)
};

// Checks `ex` once within `timeout` (the dial gets the smaller of opts.timeout and
// `timeout`). `target` null: a handshake check (dial_mode::handshake). Otherwise a
// GET of the check URL: absolute-form through http/https exits (forward mode, with
// Proxy-Authorization when the exit has credentials), origin-form inside a tunnel
// for the others; the response is read up to 64 KiB of body; ok iff 2xx.
// Non-2xx statuses are the target's fault (exit_fault false) except a 407 from a
// proxy exit; a connection that breaks or stalls after the dial is the exit's.
awaitable<probe_result> probe_exit(const pool::exit& ex, const probe_target* target, dial_options opts,
                                   std::chrono::milliseconds timeout);

// The first line of `body`, normalized, when it parses as an IPv4/IPv6 address; else "".
std::string first_line_ip(std::string_view body);

// Decodes a (possibly truncated) chunked body; stops at the last chunk or where the data ends.
std::string decode_chunked(std::string_view raw);

}  // namespace exitpool::net
