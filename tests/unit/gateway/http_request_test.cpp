#include "gateway/http_request.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace exitpool::gateway {
namespace {

// A head as the gateway gets it: parsed from the wire.
proto::request_head parse(const std::string& text) {
  auto r = proto::parse_request_head(text);
  EXPECT_EQ(r.status, proto::parse_status::complete) << r.error << "\n" << text;
  return r.head;
}

proto::request_head get(const std::string& version, const std::string& headers) {
  return parse("GET http://example.com/ HTTP/" + version + "\r\nHost: example.com\r\n" + headers + "\r\n");
}

TEST(WantsKeepAlive, Table) {
  struct tc {
    std::string version;
    std::string headers;
    bool want;
  };
  for (const auto& [version, headers, want] : {
           tc{"1.1", "", true},
           tc{"1.1", "Connection: close\r\n", false},
           tc{"1.1", "Connection: Keep-Alive, CLOSE\r\n", false},
           tc{"1.1", "Proxy-Connection: close\r\n", false},
           tc{"1.1", "Connection: keep-alive\r\n", true},
           tc{"1.1", "Connection: closed\r\n", true},  // a token, not a prefix
           tc{"1.0", "", false},
           tc{"1.0", "Connection: keep-alive\r\n", true},
           tc{"1.0", "Proxy-Connection: Keep-Alive\r\n", true},
           tc{"1.0", "Connection: close\r\n", false},
       }) {
    EXPECT_EQ(wants_keep_alive(get(version, headers)), want) << "HTTP/" << version << " " << headers;
  }
}

TEST(ExpectContinue, Table) {
  EXPECT_TRUE(is_expect_continue(get("1.1", "Expect: 100-continue\r\n")));
  EXPECT_TRUE(is_expect_continue(get("1.1", "Expect: 100-Continue\r\n")));
  EXPECT_FALSE(is_expect_continue(get("1.1", "")));
  EXPECT_FALSE(is_expect_continue(get("1.1", "Expect: something-else\r\n")));
}

TEST(Idempotent, Table) {
  for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
    EXPECT_TRUE(is_idempotent(m)) << m;
  }
  // POST and PATCH are not; methods are case-sensitive.
  for (const char* m : {"POST", "PATCH", "CONNECT", "get", "PROPFIND", ""}) {
    EXPECT_FALSE(is_idempotent(m)) << m;
  }
}

TEST(ConnectTarget, Table) {
  struct tc {
    std::string target;
    bool ok;
    std::string host;
    std::uint16_t port;
  };
  for (const auto& c : {
           tc{"example.com:443", true, "example.com", 443},
           tc{"[2001:db8::1]:8443", true, "2001:db8::1", 8443},
           tc{"10.0.0.1:22", true, "10.0.0.1", 22},  // ports are the access policy's business
           tc{"example.com", false, "", 0},
           tc{"example.com:0", false, "", 0},
           tc{"example.com:99999", false, "", 0},
           tc{"http://example.com/", false, "", 0},
       }) {
    SCOPED_TRACE(c.target);
    auto r = connect_target(parse("CONNECT " + c.target + " HTTP/1.1\r\n\r\n"));
    ASSERT_EQ(r.where.has_value(), c.ok);
    if (c.ok) {
      EXPECT_FALSE(r.refusal);
      EXPECT_EQ(r.where->host, c.host);
      EXPECT_EQ(r.where->port, c.port);
    } else {
      EXPECT_EQ(r.refusal.kind, pool::failure::bad_request);
      EXPECT_EQ(r.refusal.status, 400);
      EXPECT_NE(r.refusal.message.find("expected host:port"), std::string::npos) << r.refusal.message;
    }
  }
}

TEST(PlanForward, Refusals) {
  struct tc {
    std::string head;
    int status;
    std::string message_has;
  };
  for (const auto& c : {
           tc{"GET /path HTTP/1.1\r\nHost: a\r\n\r\n", 400, "this is a proxy"},
           tc{"GET https://u@a/ HTTP/1.1\r\n\r\n", 400, "https:// targets must use CONNECT"},
           tc{"GET ftp://a/ HTTP/1.1\r\n\r\n", 400, "scheme \"ftp\" is not supported: only http://"},
           tc{"GET https://a/ HTTP/1.1\r\n\r\n", 400, "https:// targets must use CONNECT"},
           tc{"GET HTTPS://a:8443/ HTTP/1.1\r\n\r\n", 400, "https:// targets must use CONNECT"},
           tc{"GET gopher://a:70/ HTTP/1.1\r\n\r\n", 400, "scheme \"gopher\" is not supported"},
           tc{"GET ws://a/ HTTP/1.1\r\n\r\n", 400, "scheme \"ws\" is not supported"},
           tc{"TRACE http://a/ HTTP/1.1\r\nMax-Forwards: -1\r\n\r\n", 400, "invalid Max-Forwards"},
           tc{"OPTIONS http://a/ HTTP/1.1\r\nMax-Forwards: 1x\r\n\r\n", 400, "invalid Max-Forwards"},
           tc{"GET http://u:p@a/ HTTP/1.1\r\n\r\n", 400, "bad request target"},
           tc{"POST http://a/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, ""},
           tc{"POST http://a/ HTTP/1.1\r\nTransfer-Encoding: zstd-x\r\n\r\n", 501, "unsupported"},
           tc{"POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400, ""},
       }) {
    SCOPED_TRACE(c.head);
    auto r = plan_forward(parse(c.head));
    EXPECT_FALSE(r.plan);
    EXPECT_EQ(r.refusal.kind, pool::failure::bad_request);
    EXPECT_EQ(r.refusal.status, c.status);
    EXPECT_NE(r.refusal.message.find(c.message_has), std::string::npos) << r.refusal.message;
  }
}

TEST(PlanForward, MaxForwards) {
  struct tc {
    std::string head;
    bool answer_here;
    std::optional<std::uint32_t> max_forwards;
  };
  for (const auto& c : {
           tc{"TRACE http://a/ HTTP/1.1\r\nMax-Forwards: 0\r\n\r\n", true, std::nullopt},
           tc{"OPTIONS http://a/ HTTP/1.1\r\nmax-forwards: 00\r\n\r\n", true, std::nullopt},
           tc{"TRACE http://a/ HTTP/1.1\r\nMax-Forwards: 1\r\n\r\n", false, 0},
           tc{"OPTIONS http://a/ HTTP/1.1\r\nMax-Forwards: 10\r\n\r\n", false, 9},
           tc{"OPTIONS http://a/ HTTP/1.1\r\nMax-Forwards: 99999999999999999999\r\n\r\n", false, 0xfffffffe},
           tc{"TRACE http://a/ HTTP/1.1\r\n\r\n", false, std::nullopt},
           // Only TRACE and OPTIONS (RFC 9110 section 7.6.2): others ignore it.
           tc{"GET http://a/ HTTP/1.1\r\nMax-Forwards: 0\r\n\r\n", false, std::nullopt},
           tc{"GET http://a/ HTTP/1.1\r\nMax-Forwards: junk\r\n\r\n", false, std::nullopt},
       }) {
    SCOPED_TRACE(c.head);
    auto r = plan_forward(parse(c.head));
    ASSERT_TRUE(r.plan) << r.refusal.message;
    EXPECT_EQ(r.plan->answer_here, c.answer_here);
    EXPECT_EQ(r.plan->max_forwards, c.max_forwards);
  }
}

TEST(TargetNameProblem, BoundsTheName) {
  EXPECT_EQ(target_name_problem("example.com"), "");
  EXPECT_EQ(target_name_problem(std::string(255, 'a')), "");
  EXPECT_NE(target_name_problem(std::string(256, 'a')).find("too long (256 bytes, at most 255)"), std::string::npos);
  EXPECT_NE(target_name_problem(""), "");
}

TEST(PlanForward, Decisions) {
  struct tc {
    std::string head;
    proto::body_kind body;
    bool keep_client, expect_continue, answer_continue, replayable;
  };
  using proto::body_kind;
  for (const auto& c : {
           tc{"GET http://a/x HTTP/1.1\r\n\r\n", body_kind::none, true, false, false, true},
           tc{"HEAD http://a/x HTTP/1.0\r\n\r\n", body_kind::none, false, false, false, true},
           tc{"DELETE http://a/x HTTP/1.1\r\nConnection: close\r\n\r\n", body_kind::none, false, false, false, true},
           // Not idempotent: never replayed, even without a body.
           tc{"POST http://a/x HTTP/1.1\r\n\r\n", body_kind::none, true, false, false, false},
           // A body cannot be replayed, even with an idempotent method.
           tc{"PUT http://a/x HTTP/1.1\r\nContent-Length: 3\r\n\r\n", body_kind::content_length, true, false, false,
              false},
           tc{"POST http://a/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
              body_kind::chunked, true, true, true, false},
           // 100-continue is answered by the gateway only for HTTP/1.1 with a body.
           tc{"POST http://a/x HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
              body_kind::content_length, false, true, false, false},
           tc{"GET http://a/x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", body_kind::none, true, true, false, true},
       }) {
    SCOPED_TRACE(c.head);
    auto r = plan_forward(parse(c.head));
    ASSERT_TRUE(r.plan) << r.refusal.message;
    EXPECT_FALSE(r.refusal);
    EXPECT_EQ(r.plan->target.where.host, "a");
    EXPECT_EQ(r.plan->target.where.port, 80);
    EXPECT_EQ(r.plan->target.origin_form, "/x");
    EXPECT_EQ(r.plan->body.kind, c.body);
    EXPECT_EQ(r.plan->keep_client, c.keep_client);
    EXPECT_EQ(r.plan->expect_continue, c.expect_continue);
    EXPECT_EQ(r.plan->answer_continue, c.answer_continue);
    EXPECT_EQ(r.plan->replayable, c.replayable);
  }
}

TEST(RetryElsewhere, Table) {
  forward_plan replayable;
  replayable.replayable = true;
  forward_plan once;
  struct tc {
    const forward_plan* plan;
    exit_problem problem;
    int round;
    bool want;
  };
  // --retries 2, --ban-retries 1
  for (const auto& c : {
           tc{&replayable, exit_problem::no_answer, 0, true},
           tc{&replayable, exit_problem::no_answer, 1, true},
           tc{&replayable, exit_problem::no_answer, 2, false},
           tc{&replayable, exit_problem::banned, 0, true},
           tc{&replayable, exit_problem::banned, 1, false},
           tc{&once, exit_problem::no_answer, 0, false},
           tc{&once, exit_problem::banned, 0, false},
       }) {
    EXPECT_EQ(retry_elsewhere(*c.plan, c.problem, c.round, 2, 1), c.want)
        << "replayable=" << c.plan->replayable << " banned=" << (c.problem == exit_problem::banned)
        << " round=" << c.round;
  }
  EXPECT_FALSE(retry_elsewhere(replayable, exit_problem::no_answer, 0, 0, 5));
  EXPECT_FALSE(retry_elsewhere(replayable, exit_problem::banned, 0, 5, 0));
}

TEST(ClientKeepsAlive, Table) {
  using proto::body_kind;
  EXPECT_TRUE(client_keeps_alive(true, body_kind::content_length, false));
  EXPECT_TRUE(client_keeps_alive(true, body_kind::chunked, false));
  EXPECT_TRUE(client_keeps_alive(true, body_kind::none, false));
  EXPECT_FALSE(client_keeps_alive(false, body_kind::content_length, false));
  EXPECT_FALSE(client_keeps_alive(true, body_kind::until_close, false));    // the close ends the body
  EXPECT_FALSE(client_keeps_alive(true, body_kind::content_length, true));  // draining
}

TEST(UpstreamKeepsAlive, Table) {
  struct tc {
    std::string head;
    proto::body_kind body;
    bool want;
  };
  using proto::body_kind;
  for (const auto& c : {
           tc{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", body_kind::content_length, true},
           tc{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", body_kind::chunked, true},
           tc{"HTTP/1.1 204 No Content\r\n\r\n", body_kind::none, true},
           tc{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n", body_kind::content_length, false},
           tc{"HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 2\r\n\r\n", body_kind::content_length,
              false},
           tc{"HTTP/1.1 200 OK\r\n\r\n", body_kind::until_close, false},
           tc{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", body_kind::content_length, false},
           tc{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", body_kind::content_length,
              false},
       }) {
    SCOPED_TRACE(c.head);
    auto r = proto::parse_response_head(c.head);
    ASSERT_EQ(r.status, proto::parse_status::complete) << r.error;
    EXPECT_EQ(upstream_keeps_alive(r.head, c.body), c.want);
  }
}

}  // namespace
}  // namespace exitpool::gateway
