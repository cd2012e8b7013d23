#include "gateway/http_request.hpp"

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

connect_target_result connect_target(const proto::request_head& head) {
  connect_target_result r;
  auto where = proto::parse_authority(head.target, 0);
  if (!where || where->port == 0) {
    r.refusal = make_error(pool::failure::bad_request,
                           "bad CONNECT target '" + proto::printable(head.target) + "': expected host:port");
    return r;
  }
  r.where = std::move(where);
  return r;
}

forward_plan_result plan_forward(const proto::request_head& head) {
  forward_plan_result r;
  auto target = proto::parse_absolute_target(head.target);
  if (!target) {
    std::string why = !head.target.empty() && head.target.front() == '/'
                          ? "this is a proxy: send absolute-form requests (GET http://host/path) or CONNECT"
                      : head.target.starts_with("https://")
                          ? "https:// targets must use CONNECT"
                          : "bad request target '" + proto::printable(head.target) + "'";
    r.refusal = make_error(pool::failure::bad_request, std::move(why));
    return r;
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
