#include "gateway/errors.hpp"

#include <gtest/gtest.h>

#include <string>

namespace exitpool::gateway {
namespace {

using pool::failure;
namespace socks5 = proto::socks5;

TEST(HttpError, StatusTable) {
  struct tc {
    failure f;
    int status;
  };
  for (const auto& [f, status] :
       {tc{failure::no_match, 503}, tc{failure::no_capacity, 503}, tc{failure::queue_full, 503},
        tc{failure::exhausted, 502}, tc{failure::target_prohibited, 403}, tc{failure::connection_refused, 502},
        tc{failure::connection_timeout, 504}, tc{failure::response_timeout, 504}, tc{failure::response_incomplete, 502},
        tc{failure::http_protocol_error, 502}, tc{failure::auth_failed, 407}, tc{failure::client_limit, 429},
        tc{failure::bad_request, 400}, tc{failure::overloaded, 503}, tc{failure::dns_error, 502},
        tc{failure::dns_timeout, 504}}) {
    EXPECT_EQ(http_status_for(f), status) << pool::failure_name(f);
  }
  EXPECT_EQ(make_error(failure::bad_request, "too long", {}, 414).status, 414);
}

TEST(HttpError, RenderedWithProxyStatusAndSanitisedMessage) {
  const auto out = render_error_response(make_error(failure::connection_refused, "exit a: refused\r\nX-Evil: 1"));
  EXPECT_TRUE(out.starts_with("HTTP/1.1 502 Bad Gateway\r\n")) << out;
  EXPECT_NE(out.find("X-Exitpool-Error: exit a: refused  X-Evil: 1\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("\r\nX-Evil"), std::string::npos) << out;
  EXPECT_NE(out.find("Proxy-Status: exitpool; error=connection_refused; details=\"exit a: refused  X-Evil: 1\"\r\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("Connection: close\r\n\r\nexit a: refused  X-Evil: 1\n"), std::string::npos) << out;
  const std::string body = "exit a: refused  X-Evil: 1\n";
  EXPECT_NE(out.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
}

TEST(HttpError, DnsFailuresNameTheirRfc9209Type) {
  const auto nx = render_error_response(
      make_error(failure::dns_error, "exit failed: direct: cannot resolve nx.test: no such name"));
  EXPECT_TRUE(nx.starts_with("HTTP/1.1 502 Bad Gateway\r\n")) << nx;
  EXPECT_NE(nx.find("X-Exitpool-Error: exit failed: direct: cannot resolve nx.test: no such name\r\n"),
            std::string::npos);
  EXPECT_NE(nx.find("Proxy-Status: exitpool; error=dns_error;"), std::string::npos);
  const auto slow = render_error_response(make_error(failure::dns_timeout, "cannot resolve slow.test"));
  EXPECT_TRUE(slow.starts_with("HTTP/1.1 504 Gateway Timeout\r\n")) << slow;
  EXPECT_NE(slow.find("Proxy-Status: exitpool; error=dns_timeout;"), std::string::npos);
}

TEST(HttpError, AuthAndCapacityHeaders) {
  const auto auth = render_error_response(make_error(failure::auth_failed, "bad username or password"));
  EXPECT_NE(auth.find("Proxy-Authenticate: Basic realm=\"exitpool\"\r\n"), std::string::npos);
  EXPECT_EQ(auth.find("Proxy-Status"), std::string::npos);
  const auto busy = render_error_response(make_error(failure::no_capacity, "wait", "3"));
  EXPECT_NE(busy.find("Retry-After: 3\r\n"), std::string::npos);
  EXPECT_NE(busy.find("error=connection_limit_reached"), std::string::npos);
  const auto denied = render_error_response(make_error(failure::target_prohibited, "target refused"));
  EXPECT_NE(denied.find("HTTP/1.1 403 Forbidden"), std::string::npos);
  EXPECT_NE(denied.find("error=destination_ip_prohibited"), std::string::npos);
}

TEST(SocksReply, Table) {
  EXPECT_EQ(socks_reply_for(failure::no_match), socks5::reply::network_unreachable);
  EXPECT_EQ(socks_reply_for(failure::target_prohibited), socks5::reply::not_allowed);
  EXPECT_EQ(socks_reply_for(failure::dns_error), socks5::reply::host_unreachable);
  EXPECT_EQ(socks_reply_for(failure::dns_timeout), socks5::reply::host_unreachable);
  EXPECT_EQ(socks_reply_for(failure::connection_refused), socks5::reply::connection_refused);
  EXPECT_EQ(socks_reply_for(failure::connection_timeout), socks5::reply::ttl_expired);
  EXPECT_EQ(socks_reply_for(failure::destination_ip_unroutable), socks5::reply::network_unreachable);
  EXPECT_EQ(socks_reply_for(failure::no_capacity), socks5::reply::general_failure);
  EXPECT_EQ(socks_reply_for(failure::exhausted), socks5::reply::general_failure);
  // The SOCKS5 exit's own reply passes through when the exit could not reach the target.
  EXPECT_EQ(socks_reply_for(failure::destination_unavailable, socks5::reply::host_unreachable),
            socks5::reply::host_unreachable);
}

}  // namespace
}  // namespace exitpool::gateway
