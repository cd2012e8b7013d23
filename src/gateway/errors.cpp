#include "gateway/errors.hpp"

#include <fmt/format.h>

#include "proto/http_head.hpp"
#include "proto/text.hpp"

namespace exitpool::gateway {

using pool::failure;
namespace socks5 = proto::socks5;

int http_status_for(failure f) {
  switch (f) {
    case failure::none:
      return 200;
    case failure::no_match:
    case failure::no_capacity:
    case failure::queue_full:
    case failure::overloaded:
      return 503;
    case failure::target_prohibited:
      return 403;
    case failure::dns_timeout:
    case failure::connection_timeout:
    case failure::response_timeout:
      return 504;
    case failure::bad_request:
      return 400;
    case failure::auth_failed:
      return 407;
    case failure::client_limit:
      return 429;
    case failure::exhausted:
    case failure::dns_error:
    case failure::connection_refused:
    case failure::destination_unavailable:
    case failure::destination_ip_unroutable:
    case failure::tls_protocol_error:
    case failure::tls_certificate_error:
    case failure::proxy_auth_failed:
    case failure::http_protocol_error:
    case failure::connection_terminated:
    case failure::response_incomplete:
      return 502;
  }
  return 502;
}

http_error make_error(failure f, std::string message, std::string retry_after, int status) {
  return {f, status != 0 ? status : http_status_for(f), std::move(message), std::move(retry_after)};
}

std::string render_error_response(const http_error& e) {
  const std::string message = proto::printable(e.message);
  const std::string body = message + "\n";
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", e.status, proto::reason_phrase(e.status));
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += fmt::format("Content-Length: {}\r\n", body.size());
  out += "X-Exitpool-Error: " + message + "\r\n";
  if (const auto type = pool::proxy_status_name(e.kind); !type.empty()) {
    out += fmt::format("Proxy-Status: exitpool; error={}; details={}\r\n", type, proto::quoted(message));
  }
  if (e.status == 407) {
    out += "Proxy-Authenticate: Basic realm=\"exitpool\"\r\n";
  }
  if (!e.retry_after.empty()) {
    out += "Retry-After: " + e.retry_after + "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  return out + body;
}

socks5::reply socks_reply_for(failure f, socks5::reply upstream) {
  switch (f) {
    case failure::none:
      return socks5::reply::succeeded;
    case failure::no_match:
    case failure::destination_ip_unroutable:
      return socks5::reply::network_unreachable;
    case failure::target_prohibited:
      return socks5::reply::not_allowed;
    case failure::dns_error:
    case failure::dns_timeout:
      return socks5::reply::host_unreachable;
    case failure::connection_refused:
      return socks5::reply::connection_refused;
    case failure::connection_timeout:
      return socks5::reply::ttl_expired;
    case failure::destination_unavailable:
      return upstream;
    default:
      return socks5::reply::general_failure;
  }
}

}  // namespace exitpool::gateway
