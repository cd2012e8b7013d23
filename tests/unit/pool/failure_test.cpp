#include "pool/failure.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace exitpool::pool {
namespace {

TEST(Failure, EveryFailureHasItsOwnName) {
  std::set<std::string_view> names;
  for (std::size_t k = 0; k < failure_count; ++k) {
    names.insert(failure_name(static_cast<failure>(k)));
  }
  EXPECT_EQ(names.size(), failure_count);
}

TEST(Failure, ProxyStatusTypes) {
  EXPECT_EQ(proxy_status_name(failure::none), "");
  EXPECT_EQ(proxy_status_name(failure::connection_refused), "connection_refused");
  EXPECT_EQ(proxy_status_name(failure::tls_certificate_error), "tls_certificate_error");
  EXPECT_EQ(proxy_status_name(failure::proxy_auth_failed), "proxy_internal_error");
  EXPECT_EQ(proxy_status_name(failure::target_prohibited), "destination_ip_prohibited");
  EXPECT_EQ(proxy_status_name(failure::no_match), "destination_unavailable");
  EXPECT_EQ(proxy_status_name(failure::queue_full), "connection_limit_reached");
  EXPECT_EQ(proxy_status_name(failure::response_timeout), "http_response_timeout");
  EXPECT_EQ(proxy_status_name(failure::bad_request), "http_request_error");
  EXPECT_EQ(proxy_status_name(failure::auth_failed), "");
}

}  // namespace
}  // namespace exitpool::pool
