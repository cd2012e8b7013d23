#include "gateway/http_request.hpp"

#include <algorithm>

#include "proto/socks5.hpp"
#include "proto/text.hpp"

namespace exitpool::gateway {

bool wants_keep_alive(const proto::request_head& head) {
  const auto* c = proto::find_header(head.headers, "Connection");
  const auto* pc = proto::find_header(head.headers, "Proxy-Connection");
  auto has = [&](std::string_view token) {
    return (c && proto::header_has_token(c->value, token)) || (pc && proto::header_has_token(pc->value, token));
  };
  if (head.version_minor == 0) {
    return has("keep-alive");
  }
  return !has("close");
}

bool is_expect_continue(const proto::request_head& head) {
  const auto* e = proto::find_header(head.headers, "Expect");
  return e != nullptr && proto::iequals(e->value, "100-continue");
}

bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" || method == "PUT" ||
         method == "DELETE";
}

std::string target_name_problem(std::string_view host) {
  if (host.empty()) {
    return "empty target host";
  }
  if (!proto::socks5::encodable_domain(host)) {
    return "target host name too long (" + std::to_string(host.size()) + " bytes, at most 255)";
  }
  return {};
}

connect_target_result connect_target(const proto::request_head& head) {
  connect_target_result r;
  auto where = proto::parse_authority(head.target, 0);
  if (!where || where->port == 0) {
    r.refusal = make_error(pool::failure::bad_request,
                           "bad CONNECT target " + proto::quoted(proto::clip(head.target)) + ": expected host:port");
    return r;
  }
  r.where = std::move(where);
  return r;
}

namespace {

// The value of a Max-Forwards header: digits only, capped (a proxy only decrements it).
std::optional<std::uint32_t> parse_max_forwards(std::string_view v) {
  if (v.empty()) {
    return std::nullopt;
  }
  std::uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    n = std::min<std::uint64_t>(n * 10 + static_cast<std::uint64_t>(c - '0'), 0xffffffffULL);
  }
  return static_cast<std::uint32_t>(n);
}

}  // namespace

forward_plan_result plan_forward(const proto::request_head& head) {
  forward_plan_result r;
  // Any scheme but http is refused by name, before the target is parsed (ftp://a/ has
  // no default port, but the answer must still say why).
  if (const auto sep = head.target.find("://"); sep != std::string::npos && sep > 0) {
    const std::string_view scheme = std::string_view(head.target).substr(0, sep);
    if (proto::iequals(scheme, "https")) {
      r.refusal = make_error(pool::failure::bad_request,
                             "https:// targets must use CONNECT (the gateway does not speak TLS to targets: CONNECT "
                             "host:443, then TLS through the tunnel)");
      return r;
    }
    if (!proto::iequals(scheme, "http")) {
      r.refusal = make_error(pool::failure::bad_request,
                             "scheme " + proto::quoted(proto::clip(scheme, 32)) +
                                 " is not supported: only http:// is forwarded (use CONNECT for other protocols)");
      return r;
    }
  }
  auto target = proto::parse_absolute_target(head.target);
  if (!target) {
    std::string why = !head.target.empty() && head.target.front() == '/'
                          ? "this is a proxy: send absolute-form requests (GET http://host/path) or CONNECT"
                          : "bad request target " + proto::quoted(proto::clip(head.target));
    r.refusal = make_error(pool::failure::bad_request, std::move(why));
    return r;
  }
  std::optional<std::uint32_t> max_forwards;
  if (head.method == "TRACE" || head.method == "OPTIONS") {
    if (const auto* mf = proto::find_header(head.headers, "Max-Forwards"); mf != nullptr) {
      max_forwards = parse_max_forwards(mf->value);
      if (!max_forwards) {
        r.refusal =
            make_error(pool::failure::bad_request, "invalid Max-Forwards " + proto::quoted(proto::clip(mf->value)));
        return r;
      }
    }
  }
  auto framing = proto::request_body_framing(head);
  if (!framing.framing) {
    r.refusal = make_error(pool::failure::bad_request, std::move(framing.error), {}, framing.error_status);
    return r;
  }
  forward_plan& p = r.plan.emplace();
  p.target = std::move(*target);
  p.body = *framing.framing;
  p.keep_client = wants_keep_alive(head);
  p.expect_continue = is_expect_continue(head);
  const bool has_body = p.body.kind != proto::body_kind::none;
  p.answer_continue = p.expect_continue && head.version_minor == 1 && has_body;
  p.replayable = !has_body && is_idempotent(head.method);
  if (max_forwards) {
    p.answer_here = *max_forwards == 0;
    if (!p.answer_here) {
      p.max_forwards = *max_forwards - 1;
    }
  }
  return r;
}

bool retry_elsewhere(const forward_plan& plan, exit_problem problem, int round, int retries, int ban_retries) {
  if (!plan.replayable) {
    return false;
  }
  return round < (problem == exit_problem::banned ? ban_retries : retries);
}

bool client_keeps_alive(bool keep_client, proto::body_kind answer_body, bool draining) {
  return keep_client && answer_body != proto::body_kind::until_close && !draining;
}

bool upstream_keeps_alive(const proto::response_head& resp, proto::body_kind answer_body) {
  const auto* conn = proto::find_header(resp.headers, "Connection");
  return resp.version_minor == 1 && answer_body != proto::body_kind::until_close &&
         !(conn && proto::header_has_token(conn->value, "close"));
}

}  // namespace exitpool::gateway
