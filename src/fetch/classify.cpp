#include "fetch/classify.hpp"

#include <fmt/format.h>

namespace exitpool::fetch {

const char* party_name(party p) {
  switch (p) {
    case party::none:
      return "none";
    case party::exit:
      return "exit";
    case party::target:
      return "target";
    case party::client:
      return "client";
  }
  return "?";
}

bool permanent(CURLcode rc) {
  switch (rc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_PEER_FAILED_VERIFICATION:  // the target's certificate: no exit will change it
      return true;
    default:
      return false;
  }
}

namespace {

bool is_http_proxy(proto::exit_scheme s) {
  return s == proto::exit_scheme::http || s == proto::exit_scheme::https;
}

// Only failures of the exit itself feed its health.
bool exit_fault(const attempt_facts& f) {
  if (f.scheme == proto::exit_scheme::direct) {
    return f.rc == CURLE_INTERFACE_FAILED;
  }
  return f.rc == CURLE_COULDNT_RESOLVE_PROXY || f.rc == CURLE_PROXY || f.rc == CURLE_COULDNT_CONNECT ||
         f.connect_code == 407 ||
         // Plain http:// through an HTTP proxy: its refusal of our credentials is a response
         // too: 407, or (tinyproxy) 401 with a Proxy-Authenticate challenge.
         (f.rc == CURLE_OK && (f.status == 407 || (f.status == 401 && f.proxy_challenge)) && is_http_proxy(f.scheme)) ||
         (f.rc == CURLE_OPERATION_TIMEDOUT && f.connect_us == 0);
}

// Errors in the request itself rather than in anything on the way.
bool client_error(CURLcode rc) {
  return rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL;
}

}  // namespace

classification classify(const attempt_facts& f) {
  classification c;
  c.latency = std::chrono::microseconds(f.ttfb_us > 0 ? f.ttfb_us : f.total_us);
  if (!f.setup_error.empty()) {
    c.failed = party::client;
    c.what = fmt::format("transfer setup failed: {}", f.setup_error);
    return c;
  }
  c.completed = f.rc == CURLE_OK;
  c.status = c.completed ? f.status : 0;
  const bool by_exit = exit_fault(f);
  if (by_exit) {
    c.failed = party::exit;
    c.what = c.completed ? fmt::format("proxy answered {}", f.status)
                         : std::string(f.curl_error.empty() ? curl_easy_strerror(f.rc) : f.curl_error);
  } else if (!c.completed) {
    c.failed = client_error(f.rc) ? party::client : party::target;
    c.what = f.curl_error.empty() ? std::string(curl_easy_strerror(f.rc)) : std::string(f.curl_error);
  }
  c.connected = !by_exit && (c.completed || f.connect_code / 100 == 2 ||
                             (f.scheme == proto::exit_scheme::direct && f.connect_us > 0));
  c.retryable = by_exit || (!c.completed && !permanent(f.rc));
  c.overload = f.rc == CURLE_OPERATION_TIMEDOUT || (c.completed && (f.status == 429 || f.status == 503));
  return c;
}

void apply_ban(classification& c, const ban_verdict& v) {
  if (!v.banned) {
    return;
  }
  c.banned = true;
  c.retryable = true;
  c.overload = true;
  if (c.failed == party::none) {
    c.failed = party::target;
    c.what = fmt::format("status {} (ban{})", c.status, v.retry_after.empty() ? "" : ", Retry-After " + v.retry_after);
  }
}

pool::attempt_outcome outcome_of(const classification& c, std::optional<std::chrono::milliseconds> ban) {
  pool::attempt_outcome o;
  switch (c.failed) {
    case party::none:
      o.who = pool::fault::none;
      break;
    case party::exit:
      o.who = pool::fault::exit;
      break;
    case party::target:
      o.who = pool::fault::target;
      break;
    case party::client:
      o.who = pool::fault::client;
      break;
  }
  o.connected = c.completed && c.failed != party::exit;
  o.latency = c.latency;
  o.status = static_cast<int>(c.status);
  o.ban = ban;
  return o;
}

}  // namespace exitpool::fetch
