#include "net/probe.hpp"

#include <gtest/gtest.h>

namespace exitpool::net {
namespace {

TEST(ParseProbeTarget, TableOfUrls) {
  struct tc {
    std::string url;
    bool ok;
    std::string host;
    std::uint16_t port;
    std::string origin_form;
    std::string host_header;
  } cases[] = {
      {"http://127.0.0.1:8080/ip", true, "127.0.0.1", 8080, "/ip", "127.0.0.1:8080"},
      {"http://example.com", true, "example.com", 80, "/", "example.com"},
      {"http://example.com:80/a?b=c", true, "example.com", 80, "/a?b=c", "example.com"},
      {"HTTP://Example.COM/x", true, "Example.COM", 80, "/x", "Example.COM"},
      {"http://example.com?q=1", true, "example.com", 80, "/?q=1", "example.com"},
      {"http://[::1]:9000/", true, "::1", 9000, "/", "[::1]:9000"},
      {"http://[::1]/", true, "::1", 80, "/", "[::1]"},
      {"https://example.com/", false, "", 0, "", ""},
      {"socks5://127.0.0.1:1080", false, "", 0, "", ""},
      {"http://user:pass@example.com/", false, "", 0, "", ""},
      {"http://example.com/#frag", false, "", 0, "", ""},
      {"http://example.com:99999/", false, "", 0, "", ""},
      {"http:///path", false, "", 0, "", ""},
      {"example.com/path", false, "", 0, "", ""},
      {"", false, "", 0, "", ""},
  };
  for (const auto& c : cases) {
    auto r = parse_probe_target(c.url);
    ASSERT_EQ(r.target.has_value(), c.ok) << c.url << ": " << r.error;
    if (!c.ok) {
      EXPECT_FALSE(r.error.empty()) << c.url;
      continue;
    }
    EXPECT_TRUE(r.error.empty()) << c.url;
    EXPECT_EQ(r.target->url, c.url);
    EXPECT_EQ(r.target->target.where.host, c.host) << c.url;
    EXPECT_EQ(r.target->target.where.port, c.port) << c.url;
    EXPECT_EQ(r.target->target.origin_form, c.origin_form) << c.url;
    EXPECT_EQ(r.target->host_header, c.host_header) << c.url;
  }
}

TEST(ParseProbeTarget, ErrorsSayWhy) {
  EXPECT_NE(parse_probe_target("https://example.com/").error.find("only http://"), std::string::npos);
  EXPECT_NE(parse_probe_target("not a url").error.find("http://host"), std::string::npos);
}

TEST(FirstLineIp, TableOfBodies) {
  struct tc {
    std::string body;
    std::string want;
  } cases[] = {
      {"127.0.0.11\n", "127.0.0.11"},
      {"127.0.0.11", "127.0.0.11"},
      {"  10.1.2.3 \r\nmore\n", "10.1.2.3"},
      {"::1\n", "::1"},
      {"2001:DB8::1\n", "2001:db8::1"},
      {"", ""},
      {"\n127.0.0.1\n", ""},
      {"<html>hello</html>", ""},
      {"999.1.1.1\n", ""},
      {"127.0.0.1 extra\n", ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(first_line_ip(c.body), c.want) << c.body;
  }
}

TEST(DecodeChunked, WholeTruncatedAndExtensions) {
  EXPECT_EQ(decode_chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "hello world");
  EXPECT_EQ(decode_chunked("b;ext=1\r\n127.0.0.13\n\r\n0\r\n\r\n"), "127.0.0.13\n");
  EXPECT_EQ(decode_chunked("5\nhello\n0\n\n"), "hello");
  EXPECT_EQ(decode_chunked("a\r\n0123"), "0123");
  EXPECT_EQ(decode_chunked("zz\r\nhello"), "");
  EXPECT_EQ(decode_chunked(""), "");
}

}  // namespace
}  // namespace exitpool::net
