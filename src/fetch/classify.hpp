#pragma once
// What one fetch attempt came to: a pure function of what libcurl reported (result code,
// HTTP status, CONNECT code, a proxy's challenge, timings) and the exit's scheme. No I/O,
// no clock: the caller completes the pool attempt with outcome_of() and decides on a
// retry from the classification. Any thread.
//
// Three steps, because the ban judgement (pool::ban_policy: status list, patterns,
// Retry-After) needs the response: classify() first, then apply_ban() with the policy's
// verdict, then outcome_of() for pool::attempt::complete.

#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pool/attempt.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::fetch {

// What libcurl said about one attempt.
struct attempt_facts {
  CURLcode rc = CURLE_OK;
  // Non-empty: libcurl refused an option while the transfer was set up; it never ran
  // (rc is then ignored). The text names the option.
  std::string_view setup_error;
  long status = 0;               // CURLINFO_RESPONSE_CODE of the last response (the proxy's, for a 407)
  long connect_code = 0;         // CURLINFO_HTTP_CONNECTCODE: the proxy's answer to CONNECT
  bool proxy_challenge = false;  // the last response carried Proxy-Authenticate
  proto::exit_scheme scheme = proto::exit_scheme::direct;
  std::int64_t connect_us = 0;  // CURLINFO_CONNECT_TIME_T (to the proxy, through one)
  std::int64_t ttfb_us = 0;     // CURLINFO_STARTTRANSFER_TIME_T
  std::int64_t total_us = 0;    // CURLINFO_TOTAL_TIME_T
  std::string_view curl_error;  // CURLOPT_ERRORBUFFER; empty: curl_easy_strerror(rc) is used
};

// Who made the attempt fail.
enum class party {
  none,    // it did not fail: an HTTP response that is the URL's result (404 included)
  exit,    // the exit: proxy refused or unreachable, its credentials rejected, bind failed
  target,  // the target: transport error past the exit, a ban, a certificate...
  client,  // the request itself: malformed URL, unsupported scheme, an option libcurl refused
};
const char* party_name(party p);

struct ban_verdict {
  bool banned = false;
  std::string retry_after;  // the response's Retry-After, as sent; empty: none
};

struct classification {
  party failed = party::none;
  // libcurl finished the transfer (CURLE_OK): a response arrived, possibly the proxy's
  // refusal (then failed == exit). Its status, headers and body go into the result.
  bool completed = false;
  // The exit carried the request to the target: a response came from the target, a
  // CONNECT tunnel was opened, or a direct exit connected.
  bool connected = false;
  long status = 0;  // HTTP status of the response when completed, else 0
  // Health sample for the exit: time to first byte, else total time.
  std::chrono::microseconds latency{0};
  bool retryable = false;  // another attempt (on another exit) may succeed
  // The target is overloaded (timeout, 429, 503, ban): --auto-throttle shrinks its window.
  bool overload = false;
  bool banned = false;
  // For the `error` history, "<exit>: <what>"; empty exactly when failed == none.
  std::string what;
};

// Errors that another attempt cannot fix.
bool permanent(CURLcode rc);

classification classify(const attempt_facts& f);

// Folds in the ban judgement on a completed attempt: a ban is the target refusing this
// exit for this host, retryable on another exit; an exit failure keeps its text.
void apply_ban(classification& c, const ban_verdict& v);

// What the attempt tells the pool (pool::attempt::complete), after apply_ban: who failed,
// the status and the ban (`ban`: the policy's verdict). Health: a transfer that completed
// through the exit is a success, with the time to first byte as its latency sample; the
// exit's own failures count against it; anything else (the target or the request failed
// before a response came back) says nothing about the exit. (classification::connected is
// wider: a CONNECT tunnel opened to a target that then timed out has no usable latency.)
pool::attempt_outcome outcome_of(const classification& c, std::optional<std::chrono::milliseconds> ban);

}  // namespace exitpool::fetch
