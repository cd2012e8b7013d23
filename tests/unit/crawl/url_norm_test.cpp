#include "crawl/url_norm.hpp"

#include <gtest/gtest.h>

namespace exitpool::crawl {
namespace {

struct resolve_case {
  const char* base;
  const char* href;
  const char* want;  // nullptr: refused
};

TEST(UrlNorm, ResolvesAndNormalises) {
  const normalize_options o;
  const resolve_case cases[] = {
      {"http://a.test/b/c.html", "d.html", "http://a.test/b/d.html"},
      {"http://a.test/b/c.html", "../d.html", "http://a.test/d.html"},
      {"http://a.test/b/c.html", "/x/./y/../z", "http://a.test/x/z"},
      {"http://a.test/b/c.html", "//B.test:80/p", "http://b.test/p"},
      {"http://a.test/b/c.html", "HTTP://A.TEST:80/P#frag", "http://a.test/P"},
      {"https://a.test/", "https://a.test:443/x", "https://a.test/x"},
      {"https://a.test/", "http://a.test:443/x", "http://a.test:443/x"},
      {"http://a.test/b/c.html", "#top", "http://a.test/b/c.html"},
      {"http://a.test/b/c.html", "?q=1", "http://a.test/b/c.html?q=1"},
      {"http://a.test/", "http://a.test", "http://a.test/"},
      {"http://a.test/", "  /sp ace\n.html ", "http://a.test/sp%20ace.html"},
      {"http://a.test/", "/%7euser/%c3%a9", "http://a.test/~user/%C3%A9"},
      {"http://a.test/", "/caf\xc3\xa9", "http://a.test/caf%C3%A9"},
      {"http://a.test/", "/100%", "http://a.test/100%25"},
      {"http://a.test/", "http://user:pw@a.test/x", "http://a.test/x"},
      {"http://a.test/", "mailto:x@a.test", nullptr},
      {"http://a.test/", "javascript:void(0)", nullptr},
      {"http://a.test/", "ftp://a.test/x", nullptr},
      {"http://a.test/", "http:///nohost", nullptr},
      {"http://127.0.0.1:8080/a/", "b", "http://127.0.0.1:8080/a/b"},
      {"http://[::1]:8080/", "/x", "http://[::1]:8080/x"},
  };
  for (const auto& c : cases) {
    auto got = resolve_url(c.base, c.href, o);
    if (c.want == nullptr) {
      EXPECT_FALSE(got) << c.href << " -> " << got.value_or("");
    } else {
      ASSERT_TRUE(got) << c.href;
      EXPECT_EQ(*got, c.want) << c.href;
    }
  }
}

TEST(UrlNorm, StripsQueryParameters) {
  normalize_options o;
  o.strip_params = {"utm_source", "sid"};
  EXPECT_EQ(*normalize_url("http://a.test/x?utm_source=m&id=3&sid=9", o), "http://a.test/x?id=3");
  EXPECT_EQ(*normalize_url("http://a.test/x?utm_source=m", o), "http://a.test/x");
  o.strip_query = true;
  EXPECT_EQ(*normalize_url("http://a.test/x?id=3", o), "http://a.test/x");
}

TEST(UrlNorm, NormalisesSeedsAndRefusesJunk) {
  const normalize_options o;
  EXPECT_EQ(*normalize_url("HTTP://Example.TEST:80/a/../b/./c", o), "http://example.test/b/c");
  EXPECT_FALSE(normalize_url("not a url", o));
  EXPECT_FALSE(normalize_url("htp:/x", o));
  EXPECT_FALSE(normalize_url("", o));
  normalize_options shortest;
  shortest.max_length = 20;
  EXPECT_FALSE(normalize_url("http://a.test/a-long-path-over-twenty", shortest));
}

TEST(UrlNorm, SplitsKeys) {
  auto k = split_url("http://a.test:8080/x/y?q=1");
  EXPECT_EQ(k.scheme, "http");
  EXPECT_EQ(k.authority, "a.test:8080");
  EXPECT_EQ(k.host, "a.test");
  EXPECT_EQ(k.path_query, "/x/y?q=1");
  k = split_url("http://[::1]:80/");
  EXPECT_EQ(k.host, "[::1]");
}

}  // namespace
}  // namespace exitpool::crawl
