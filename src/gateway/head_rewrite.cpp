#include "gateway/head_rewrite.hpp"

#include <algorithm>

#include "proto/base64.hpp"
#include "proto/text.hpp"

namespace exitpool::gateway {

std::string upstream_request_head(const proto::request_head& head, const proto::absolute_target& target,
                                  const proto::exit_spec& spec, bool drop_expect, bool keep_alive,
                                  std::optional<std::uint32_t> max_forwards) {
  const bool to_proxy = proto::is_http_proxy_scheme(spec.scheme);
  const std::string_view request_target = to_proxy ? std::string_view(head.target) : target.origin_form;
  std::size_t size = head.method.size() + request_target.size() + 64;
  for (const auto& h : head.headers) {
    size += h.name.size() + h.value.size() + 4;
  }
  std::string out;
  out.reserve(size);
  out.append(head.method).append(" ").append(request_target).append(" HTTP/1.1\r\n");
  // The authority as the client wrote it (plan_forward validated it); a target without
  // one cannot reach here, but the parsed form stands in rather than an empty Host.
  const std::string_view authority = proto::authority_of(head.target);
  if (!authority.empty()) {
    out.append("Host: ").append(authority).append("\r\n");
  } else {
    out.append("Host: ").append(proto::format_authority(target.where.host, target.where.port)).append("\r\n");
  }
  for (const auto& h : head.headers) {
    if (proto::is_hop_by_hop(h.name, head.headers) || (drop_expect && proto::iequals(h.name, "Expect")) ||
        proto::iequals(h.name, "Host") || (max_forwards && proto::iequals(h.name, "Max-Forwards"))) {
      continue;  // includes the client's Proxy-Authorization: never leaked to the target
    }
    out.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  if (max_forwards) {
    out.append("Max-Forwards: ").append(std::to_string(*max_forwards)).append("\r\n");
  }
  if (to_proxy && !spec.user.empty()) {
    out.append("Proxy-Authorization: Basic ").append(proto::base64_encode(spec.user + ":" + spec.pass)).append("\r\n");
  }
  // Kept alive only for requests that may be replayed on a fresh connection if the idle
  // one turns out closed; the pool keys it by exit and session so rotation is not pinned.
  out.append(keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
  return out;
}

std::string client_response_head(const proto::response_head& resp, std::string_view exit_id, bool keep_alive,
                                 std::size_t reserve_extra) {
  std::size_t size = resp.reason.size() + exit_id.size() + reserve_extra + 96;
  for (const auto& h : resp.headers) {
    size += h.name.size() + h.value.size() + 4;
  }
  std::string out;
  out.reserve(size);
  char status[4];
  const int code = std::clamp(resp.status, 100, 999);
  status[0] = static_cast<char>('0' + code / 100);
  status[1] = static_cast<char>('0' + code / 10 % 10);
  status[2] = static_cast<char>('0' + code % 10);
  status[3] = ' ';
  out.append("HTTP/1.1 ").append(status, 4).append(resp.reason).append("\r\n");
  for (const auto& h : resp.headers) {
    if (!proto::is_hop_by_hop(h.name, resp.headers)) {
      out.append(h.name).append(": ").append(h.value).append("\r\n");
    }
  }
  out.append("X-Exitpool-Exit: ").append(proto::printable(exit_id)).append("\r\n");
  out.append(keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
  return out;
}

std::string own_answer(const proto::request_head& head, bool keep_alive) {
  std::string out = "HTTP/1.1 200 OK\r\n";
  const std::string_view connection = keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (head.method != "TRACE") {
    out.append("Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH, CONNECT\r\nContent-Length: 0\r\n");
    out.append(connection);
    return out;
  }
  std::string body;
  body.append(head.method)
      .append(" ")
      .append(head.target)
      .append(head.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const auto& h : head.headers) {
    if (proto::iequals(h.name, "Authorization") || proto::iequals(h.name, "Proxy-Authorization") ||
        proto::iequals(h.name, "Cookie")) {
      continue;
    }
    body.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  body.append("\r\n");
  out.append("Content-Type: message/http\r\nContent-Length: ").append(std::to_string(body.size())).append("\r\n");
  out.append(connection);
  return out + body;
}

}  // namespace exitpool::gateway
