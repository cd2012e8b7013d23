#pragma once
// The gateway's edge of the error vocabulary (pool/failure.hpp): one table from a
// failure to what an HTTP client reads (status, X-Exitpool-Error, RFC 9209
// Proxy-Status, Retry-After) and one to what a SOCKS5 client reads (RFC 1928 reply).
// Pure: no I/O, any thread.

#include <string>
#include <string_view>

#include "pool/failure.hpp"
#include "proto/socks5.hpp"

namespace exitpool::gateway {

// An error the client can read.
struct http_error {
  pool::failure kind = pool::failure::none;  // none: no error
  int status = 0;
  std::string message;      // X-Exitpool-Error and the body; sanitised when rendered
  std::string retry_after;  // seconds; empty: no Retry-After header
  explicit operator bool() const { return kind != pool::failure::none; }
};

// The HTTP status for `f`: 503 for the pool's refusals and capacity, 502 for a failed
// exit, 504 for timeouts, 403 for the access policy, 407/429/400 for the client's side.
int http_status_for(pool::failure f);

// An error of kind `f`; `status` overrides the table (a parser's 414/431/501/505).
http_error make_error(pool::failure f, std::string message, std::string retry_after = {}, int status = 0);

// The whole response: status line, Content-Type, Content-Length, X-Exitpool-Error,
// Proxy-Status (when the failure has an RFC 9209 type), Proxy-Authenticate (407),
// Retry-After, Connection: close, and the message as a text body.
std::string render_error_response(const http_error& e);

// The SOCKS5 reply for `f`. `upstream` is the SOCKS5 exit's own reply (or the dialer's
// more precise one), used for destination_unavailable.
proto::socks5::reply socks_reply_for(pool::failure f,
                                     proto::socks5::reply upstream = proto::socks5::reply::general_failure);

}  // namespace exitpool::gateway
