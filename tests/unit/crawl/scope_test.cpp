#include "crawl/scope.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace exitpool::crawl {
namespace {

const std::vector<std::string> seeds{"http://www.a.test/docs/index.html", "http://127.0.0.31:8080/"};

TEST(Scope, Kinds) {
  const url_scope host(scope_kind::host, seeds, {}, {});
  EXPECT_TRUE(host.allows("http://www.a.test/other"));
  EXPECT_TRUE(host.allows("https://www.a.test:8443/x"));
  EXPECT_FALSE(host.allows("http://a.test/"));
  EXPECT_TRUE(host.allows("http://127.0.0.31:8080/x"));
  EXPECT_FALSE(host.allows("http://127.0.0.32:8080/x"));

  const url_scope domain(scope_kind::domain, seeds, {}, {});
  EXPECT_TRUE(domain.allows("http://a.test/"));
  EXPECT_TRUE(domain.allows("http://sub.a.test/"));
  EXPECT_FALSE(domain.allows("http://evila.test/"));
  EXPECT_FALSE(domain.allows("http://b.test/"));

  const url_scope prefix(scope_kind::prefix, seeds, {}, {});
  EXPECT_TRUE(prefix.allows("http://www.a.test/docs/x/y"));
  EXPECT_FALSE(prefix.allows("http://www.a.test/doc"));
  EXPECT_TRUE(prefix.allows("http://127.0.0.31:8080/anything"));

  const url_scope any(scope_kind::any, seeds, {}, {});
  EXPECT_TRUE(any.allows("http://anything.test/"));
}

TEST(Scope, IncludeExclude) {
  const url_scope s(scope_kind::any, seeds, {"/docs/", "\\.html$"}, {"\\?print=", "/private/"});
  EXPECT_TRUE(s.allows("http://x.test/docs/a"));
  EXPECT_TRUE(s.allows("http://x.test/a.html"));
  EXPECT_FALSE(s.allows("http://x.test/a.txt"));
  EXPECT_FALSE(s.allows("http://x.test/docs/a?print=1"));
  EXPECT_FALSE(s.allows("http://x.test/private/a.html"));
  EXPECT_THROW(url_scope(scope_kind::any, seeds, {"("}, {}), std::invalid_argument);
}

TEST(Scope, ParseKind) {
  scope_kind k{};
  EXPECT_TRUE(parse_scope_kind("domain", k));
  EXPECT_EQ(k, scope_kind::domain);
  EXPECT_FALSE(parse_scope_kind("site", k));
}

}  // namespace
}  // namespace exitpool::crawl
