#include "pool/failure.hpp"

namespace exitpool::pool {

std::string_view failure_name(failure f) {
  switch (f) {
    case failure::none:
      return "none";
    case failure::no_match:
      return "no_match";
    case failure::exhausted:
      return "exhausted";
    case failure::no_capacity:
      return "no_capacity";
    case failure::queue_full:
      return "queue_full";
    case failure::target_prohibited:
      return "target_prohibited";
    case failure::dns_error:
      return "dns_error";
    case failure::dns_timeout:
      return "dns_timeout";
    case failure::connection_refused:
      return "connection_refused";
    case failure::connection_timeout:
      return "connection_timeout";
    case failure::destination_unavailable:
      return "destination_unavailable";
    case failure::destination_ip_unroutable:
      return "destination_ip_unroutable";
    case failure::tls_protocol_error:
      return "tls_protocol_error";
    case failure::tls_certificate_error:
      return "tls_certificate_error";
    case failure::proxy_auth_failed:
      return "proxy_auth_failed";
    case failure::http_protocol_error:
      return "http_protocol_error";
    case failure::connection_terminated:
      return "connection_terminated";
    case failure::response_timeout:
      return "response_timeout";
    case failure::response_incomplete:
      return "response_incomplete";
    case failure::bad_request:
      return "bad_request";
    case failure::auth_failed:
      return "auth_failed";
    case failure::client_limit:
      return "client_limit";
    case failure::overloaded:
      return "overloaded";
  }
  return "internal";
}

std::string_view proxy_status_name(failure f) {
  switch (f) {
    case failure::none:
      return "";
    case failure::no_match:
    case failure::exhausted:
      return "destination_unavailable";
    case failure::no_capacity:
    case failure::queue_full:
    case failure::client_limit:
    case failure::overloaded:
      return "connection_limit_reached";
    case failure::target_prohibited:
      return "destination_ip_prohibited";
    case failure::proxy_auth_failed:
      return "proxy_internal_error";  // RFC 9209 has no type for it
    case failure::response_timeout:
      return "http_response_timeout";
    case failure::response_incomplete:
      return "http_response_incomplete";
    case failure::bad_request:
      return "http_request_error";
    case failure::auth_failed:
      return "";  // 407 says it; no Proxy-Status (as before)
    default:
      // Every other dial failure is named after its RFC 9209 type.
      return is_dial_failure(f) ? failure_name(f) : "proxy_internal_error";
  }
}

}  // namespace exitpool::pool
