#include "pool/ban_policy.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "proto/http_head.hpp"

namespace exitpool::pool {
namespace {

using namespace std::chrono_literals;

const auto wall = std::chrono::system_clock::time_point{} + 1000h;

TEST(BanPolicy, StatusInTheListBans) {
  const ban_policy p({403, 429}, {}, 300s);
  EXPECT_EQ(p.judge({.status = 429}, wall), 300s);
  EXPECT_EQ(p.judge({.status = 403}, wall), 300s);
  EXPECT_EQ(p.judge({.status = 200}, wall), std::nullopt);
  EXPECT_EQ(p.judge({.status = 503}, wall), std::nullopt);
  EXPECT_FALSE(p.reads_body());
  EXPECT_TRUE(p.may_ban(429));
  EXPECT_FALSE(p.may_ban(200));
}

TEST(BanPolicy, RetryAfterSizesTheBan) {
  const ban_policy p({429}, {}, 300s);
  EXPECT_EQ(p.judge({.status = 429, .retry_after = "120"}, wall), 120s);
  EXPECT_EQ(p.judge({.status = 429, .retry_after = "soon"}, wall), 300s);  // malformed: the default
  EXPECT_EQ(p.judge({.status = 429, .retry_after = "99999"}, wall), 1h);   // clamped
  EXPECT_EQ(p.judge({.status = 200, .retry_after = "120"}, wall), std::nullopt);
}

TEST(BanPolicy, PatternsSearchStatusLineHeadersAndBodyStart) {
  const ban_policy p({}, {"captcha", "Server: cloudflare\n", "^403 Forbidden\n"}, 60s);
  EXPECT_TRUE(p.reads_body());
  EXPECT_TRUE(p.may_ban(200));
  EXPECT_EQ(p.judge({.status = 200, .reason = "OK", .body = "<p>solve this captcha</p>"}, wall), 60s);
  std::string headers;
  append_header_line(headers, "Content-Type", "text/html");
  append_header_line(headers, "Server", "cloudflare");
  EXPECT_EQ(p.judge({.status = 200, .reason = "OK", .header_lines = headers}, wall), 60s);
  EXPECT_EQ(p.judge({.status = 403, .reason = "Forbidden"}, wall), 60s);
  EXPECT_EQ(p.judge({.status = 200, .reason = "OK", .body = "hello"}, wall), std::nullopt);
}

TEST(BanPolicy, OnlyTheFirst16KiBOfTheBodyIsSearched) {
  const ban_policy p({}, {"blocked"}, 60s);
  std::string body(ban_policy::look_ahead - 3, 'x');
  body += "blocked";
  EXPECT_EQ(p.judge({.status = 200, .body = body}, wall), std::nullopt);
  body = std::string(ban_policy::look_ahead - 7, 'x') + "blocked";
  EXPECT_EQ(p.judge({.status = 200, .body = body}, wall), 60s);
}

// The gateway's sample: its parsed head as it is, the first Retry-After.
TEST(BanPolicy, SampleOfAParsedHead) {
  const auto parsed = proto::parse_response_head(
      "HTTP/1.1 429 Slow  Down\r\nServer:  nginx \r\nretry-after: 30\r\nRetry-After: 60\r\n\r\n");
  ASSERT_EQ(parsed.status, proto::parse_status::complete) << parsed.error;
  std::string lines = "stale";
  const auto s = sample_of(parsed.head, "body", lines);
  EXPECT_EQ(s.status, 429);
  EXPECT_EQ(s.reason, "Slow  Down");
  EXPECT_EQ(s.header_lines, "Server: nginx\nretry-after: 30\nRetry-After: 60\n");
  EXPECT_EQ(s.retry_after, "30");
  EXPECT_EQ(s.body, "body");
  const ban_policy p({}, {"^429 Slow  Down\nServer: nginx\n"}, 300s);
  EXPECT_EQ(p.judge(s, wall), 30s);
}

TEST(BanPolicy, BadPatternNamesItself) {
  try {
    ban_policy p({}, {"ok", "(unclosed"}, 60s);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'(unclosed'"), std::string::npos) << e.what();
  }
}

// std::regex backtracked on nested quantifiers until the stack overflowed (the gateway
// died); RE2 takes time linear in the text, whatever the pattern.
TEST(BanPolicy, HostileBodiesCannotMakeAPatternBacktrack) {
  const ban_policy p({}, {"(a|b)*c", "(x+x+)+y"}, 60s);
  const std::string body(ban_policy::look_ahead, 'a');
  EXPECT_EQ(p.judge({.status = 200, .reason = "OK", .body = body}, wall), std::nullopt);
  const std::string xs(ban_policy::look_ahead, 'x');
  EXPECT_EQ(p.judge({.status = 200, .reason = "OK", .body = xs}, wall), std::nullopt);
  EXPECT_EQ(p.judge({.status = 200, .reason = "OK", .body = body.substr(0, 100) + "c"}, wall), 60s);
}

TEST(BanPolicy, Re2SyntaxCaseInsensitiveAndBytes) {
  const ban_policy p({}, {"(?i)access denied", "a|b-never", "\\xff\\x00z"}, 60s);
  EXPECT_EQ(p.judge({.status = 200, .body = "<h1>ACCESS Denied</h1>"}, wall), 60s);
  // Each pattern is its own alternative: "a|b-never" does not swallow its neighbours.
  EXPECT_EQ(p.judge({.status = 200, .body = "b-never"}, wall), 60s);
  // Bodies are bytes (Latin-1), not UTF-8: a NUL and a 0xff byte match as themselves.
  EXPECT_EQ(p.judge({.status = 200, .body = std::string("\xff\x00z", 3)}, wall), 60s);
  const ban_policy strict({}, {"access denied"}, 60s);
  EXPECT_EQ(strict.judge({.status = 200, .body = "ACCESS DENIED"}, wall), std::nullopt);
}

TEST(BanPolicy, PatternsRe2CannotRunInLinearTimeAreRefused) {
  for (const char* bad : {"(a)\\1", "foo(?=bar)", "(?<!x)y"}) {
    try {
      ban_policy p({}, {bad}, 60s);
      ADD_FAILURE() << bad << ": no exception";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("--ban-pattern '") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace exitpool::pool
