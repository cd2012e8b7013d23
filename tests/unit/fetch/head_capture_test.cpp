#include "fetch/head_capture.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "pool/ban_policy.hpp"
#include "proto/http_head.hpp"

namespace exitpool::fetch {
namespace {

using namespace std::chrono_literals;
using verdict = std::optional<std::chrono::milliseconds>;

// Sun, 06 Nov 1994 08:49:37 GMT, minus 100 s: an HTTP-date Retry-After of that time is 100 s.
const auto wall = std::chrono::sys_days{std::chrono::year{1994} / 11 / 6} + 8h + 49min + 37s - 100s;

// The gateway's way (session.cpp judge_ban): its parser's head, then pool::sample_of.
verdict gateway_verdict(const pool::ban_policy& p, const std::string& head, const std::string& body) {
  const auto parsed = proto::parse_response_head(head);
  EXPECT_EQ(parsed.status, proto::parse_status::complete) << parsed.error;
  if (!p.may_ban(parsed.head.status)) {
    return std::nullopt;
  }
  std::string lines;
  return p.judge(pool::sample_of(parsed.head, body, lines), wall);
}

// fetch's way (fetcher.cpp judge_ban): libcurl's header callback hands over each line of
// the head, CRLF included, and the blank line that ends it.
verdict fetch_verdict(const pool::ban_policy& p, const std::string& head, const std::string& body) {
  head_capture cap;
  cap.reset(p.reads_body());
  std::size_t at = 0;
  while (at < head.size()) {
    const auto nl = head.find('\n', at);
    const auto end = nl == std::string::npos ? head.size() : nl + 1;
    cap.line(std::string_view(head).substr(at, end - at));
    at = end;
  }
  if (!p.may_ban(cap.status())) {
    return std::nullopt;
  }
  return p.judge(cap.sample(body), wall);
}

struct response_case {
  const char* name;
  std::vector<int> statuses;
  std::vector<std::string> patterns;
  std::string head;  // status line and header lines, CRLF each, and the blank line
  std::string body;
  verdict want;
};

std::string body_with_word_at(std::size_t offset, const char* word) {
  return std::string(offset, 'x') + word;
}

const std::vector<int> defaults{403, 429, 503};

const response_case cases[] = {
    {"status in the list", defaults, {}, "HTTP/1.1 429 Too Many Requests\r\n\r\n", "", 300s},
    {"status not in the list", defaults, {}, "HTTP/1.1 404 Not Found\r\n\r\n", "", std::nullopt},
    {"the list replaced", {599}, {}, "HTTP/1.1 429 Too Many Requests\r\n\r\n", "", std::nullopt},
    // The drift this guards: fetch once matched "429\n", without the reason phrase.
    {"pattern on the reason phrase",
     {},
     {"^200 Captcha Required\n"},
     "HTTP/1.1 200 Captcha Required\r\n\r\n",
     "",
     300s},
    {"reason phrase kept as sent", {}, {"^200 Odd  Reason \n"}, "HTTP/1.1 200 Odd  Reason \r\n\r\n", "", 300s},
    {"no reason phrase", {}, {"^403 \n"}, "HTTP/1.1 403 \r\n\r\n", "", 300s},
    // fetch once searched only the headers it writes to its result (content-type, server...).
    {"pattern on any header",
     {},
     {"X-Challenge: captcha"},
     "HTTP/1.1 200 OK\r\nX-Challenge: captcha-required\r\n\r\n",
     "fine\n",
     300s},
    {"header value without its surrounding whitespace",
     {},
     {"\nServer: cloudflare\n"},
     "HTTP/1.1 200 OK\r\nServer: \t cloudflare  \r\n\r\n",
     "",
     300s},
    {"header name as sent", {}, {"x-robots: none"}, "HTTP/1.1 200 OK\r\nX-Robots: none\r\n\r\n", "", std::nullopt},
    {"head ends with a blank line before the body",
     {},
     {"Length: 7\n\nblocked"},
     "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
     "blocked",
     300s},
    {"pattern in the body", {}, {"captcha"}, "HTTP/1.1 200 OK\r\n\r\n", "<p>solve this captcha</p>", 300s},
    {"pattern ending at 16 KiB",
     {},
     {"blocked"},
     "HTTP/1.1 200 OK\r\n\r\n",
     body_with_word_at(pool::ban_policy::look_ahead - 7, "blocked"),
     300s},
    {"pattern past 16 KiB",
     {},
     {"blocked"},
     "HTTP/1.1 200 OK\r\n\r\n",
     body_with_word_at(pool::ban_policy::look_ahead - 6, "blocked"),
     std::nullopt},
    {"no pattern matches",
     {},
     {"captcha", "blocked"},
     "HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\n",
     "hello\n",
     std::nullopt},
    {"Retry-After seconds", defaults, {}, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\n\r\n", "", 120s},
    {"Retry-After HTTP-date",
     defaults,
     {},
     "HTTP/1.1 503 Unavailable\r\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
     "",
     100s},
    {"Retry-After over an hour", defaults, {}, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 99999\r\n\r\n", "", 1h},
    {"Retry-After malformed", defaults, {}, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: soon\r\n\r\n", "", 300s},
    {"Retry-After: the first one",
     defaults,
     {},
     "HTTP/1.1 429 Too Many Requests\r\nretry-after: 30\r\nRetry-After: 60\r\n\r\n",
     "",
     30s},
    {"Retry-After on a pattern ban", {}, {"captcha"}, "HTTP/1.1 200 OK\r\nRetry-After: 10\r\n\r\n", "captcha", 10s},
    {"Retry-After without a ban", defaults, {}, "HTTP/1.1 200 OK\r\nRetry-After: 10\r\n\r\n", "", std::nullopt},
};

void PrintTo(const response_case& c, std::ostream* os) {
  *os << c.name;
}

class same_verdict : public ::testing::TestWithParam<response_case> {};

TEST_P(same_verdict, GatewayAndFetchJudgeTheSameResponseTheSameWay) {
  const auto& t = GetParam();
  const pool::ban_policy p(t.statuses, t.patterns, 300s);
  const auto gw = gateway_verdict(p, t.head, t.body);
  const auto fe = fetch_verdict(p, t.head, t.body);
  EXPECT_EQ(gw, t.want);
  EXPECT_EQ(fe, gw);
}

INSTANTIATE_TEST_SUITE_P(cases, same_verdict, ::testing::ValuesIn(cases), [](const auto& info) {
  std::string n;
  for (const char* c = info.param.name; *c != '\0'; ++c) {
    n += (std::isalnum(static_cast<unsigned char>(*c)) != 0) ? *c : '_';
  }
  return n;
});

// What a capture holds after libcurl handed it `lines`.
head_capture captured(bool keep_lines, std::initializer_list<const char*> lines) {
  head_capture cap;
  cap.reset(keep_lines);
  for (const char* l : lines) {
    cap.line(l);
  }
  return cap;
}

TEST(HeadCapture, OnlyTheLastResponseCounts) {
  // A redirect followed by libcurl, then the final answer: its head alone is judged.
  const pool::ban_policy p({}, {"^200 OK\n", "Location"}, 60s);
  const head_capture cap = captured(true, {"HTTP/1.1 302 Found\r\n", "Location: /next\r\n", "Retry-After: 5\r\n",
                                           "\r\n", "HTTP/1.1 403 Forbidden\r\n", "Server: x\r\n", "\r\n"});
  const auto s = cap.sample("");
  EXPECT_EQ(s.status, 403);
  EXPECT_EQ(s.reason, "Forbidden");
  EXPECT_EQ(s.header_lines, "Server: x\n");
  EXPECT_EQ(s.retry_after, "");
  EXPECT_EQ(p.judge(s, wall), std::nullopt);
}

TEST(HeadCapture, TrailersAreNotPartOfTheHead) {
  const head_capture cap = captured(
      true, {"HTTP/1.1 200 OK\r\n", "Transfer-Encoding: chunked\r\n", "\r\n", "X-Trailer: captcha\r\n", "\r\n"});
  EXPECT_EQ(cap.sample("").header_lines, "Transfer-Encoding: chunked\n");
}

TEST(HeadCapture, Http2StatusLineHasNoReason) {
  const head_capture cap =
      captured(true, {"HTTP/2 429 \r\n", "retry-after: 7\r\n", "content-type: text/html\r\n", "\r\n"});
  const auto s = cap.sample("body");
  EXPECT_EQ(s.status, 429);
  EXPECT_EQ(s.reason, "");
  EXPECT_EQ(s.header_lines, "retry-after: 7\ncontent-type: text/html\n");
  EXPECT_EQ(s.retry_after, "7");
  EXPECT_EQ(s.body, "body");
}

TEST(HeadCapture, WithoutPatternsOnlyStatusReasonAndRetryAfterAreKept) {
  const head_capture cap =
      captured(false, {"HTTP/1.1 429 Slow Down\r\n", "Retry-After:  120 \r\n", "Server: x\r\n", "\r\n"});
  const auto s = cap.sample("");
  EXPECT_EQ(s.reason, "Slow Down");
  EXPECT_EQ(s.retry_after, "120");
  EXPECT_EQ(s.header_lines, "");
}

TEST(HeadCapture, LinesTheGatewayWouldRefuseAreSkipped) {
  const head_capture cap = captured(true, {"HTTP/1.1 200 OK\r\n", " folded: value\r\n", "no colon here\r\n",
                                           ": empty name\r\n", "Good: yes\r\n", "\r\n"});
  EXPECT_EQ(cap.sample("").header_lines, "Good: yes\n");
}

}  // namespace
}  // namespace exitpool::fetch
