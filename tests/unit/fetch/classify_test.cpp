#include "fetch/classify.hpp"

#include <gtest/gtest.h>

namespace exitpool::fetch {
namespace {

using proto::exit_scheme;

struct outcome_case {
  const char* name;
  attempt_facts facts;
  party failed;
  bool completed;
  bool connected;
  long status;
  bool retryable;
  bool overload;
  const char* what;  // strerror_text: libcurl's text for facts.rc
};

// Where the expected text is libcurl's own (which varies between versions).
constexpr const char* strerror_text = nullptr;

void PrintTo(const outcome_case& c, std::ostream* os) {
  *os << c.name;
}

attempt_facts facts(exit_scheme s, CURLcode rc, long status = 0) {
  attempt_facts f;
  f.scheme = s;
  f.rc = rc;
  f.status = status;
  f.connect_us = rc == CURLE_OK ? 1000 : 0;  // what a refused or unreachable peer leaves
  f.ttfb_us = 5000;
  f.total_us = 6000;
  return f;
}

attempt_facts with(attempt_facts f, auto&& edit) {
  edit(f);
  return f;
}

const outcome_case cases[] = {
    {"direct 200", facts(exit_scheme::direct, CURLE_OK, 200), party::none, true, true, 200, false, false, ""},
    {"direct 404 is a result", facts(exit_scheme::direct, CURLE_OK, 404), party::none, true, true, 404, false, false,
     ""},
    {"direct 429 overloads but is a result until judged a ban", facts(exit_scheme::direct, CURLE_OK, 429), party::none,
     true, true, 429, false, true, ""},
    {"direct 503 overloads", facts(exit_scheme::direct, CURLE_OK, 503), party::none, true, true, 503, false, true, ""},
    {"direct bind failure is the exit's", facts(exit_scheme::direct, CURLE_INTERFACE_FAILED), party::exit, false, false,
     0, true, false, strerror_text},
    {"direct connect refused is the target's", facts(exit_scheme::direct, CURLE_COULDNT_CONNECT), party::target, false,
     false, 0, true, false, strerror_text},
    {"direct timeout before connect is the target's",
     with(facts(exit_scheme::direct, CURLE_OPERATION_TIMEDOUT), [](auto& f) { f.connect_us = 0; }), party::target,
     false, false, 0, true, true, strerror_text},
    {"errbuf wins over strerror",
     with(facts(exit_scheme::direct, CURLE_RECV_ERROR),
          [](auto& f) {
            f.curl_error = "Connection reset by peer";
            f.connect_us = 1000;
          }),
     party::target, false, true, 0, true, false, "Connection reset by peer"},
    {"unknown host is permanent", facts(exit_scheme::socks5, CURLE_COULDNT_RESOLVE_HOST), party::target, false, false,
     0, false, false, strerror_text},
    {"bad certificate is permanent", facts(exit_scheme::direct, CURLE_PEER_FAILED_VERIFICATION), party::target, false,
     false, 0, false, false, strerror_text},
    {"too many redirects is permanent", facts(exit_scheme::http, CURLE_TOO_MANY_REDIRECTS), party::target, false, false,
     0, false, false, strerror_text},
    {"malformed url is the client's", facts(exit_scheme::direct, CURLE_URL_MALFORMAT), party::client, false, false, 0,
     false, false, strerror_text},
    {"proxy unreachable", facts(exit_scheme::http, CURLE_COULDNT_CONNECT), party::exit, false, false, 0, true, false,
     strerror_text},
    {"proxy name unknown", facts(exit_scheme::socks5h, CURLE_COULDNT_RESOLVE_PROXY), party::exit, false, false, 0, true,
     false, strerror_text},
    {"socks failure", facts(exit_scheme::socks5, CURLE_PROXY), party::exit, false, false, 0, true, false,
     strerror_text},
    {"CONNECT refused with 407",
     with(facts(exit_scheme::https, CURLE_RECV_ERROR), [](auto& f) { f.connect_code = 407; }), party::exit, false,
     false, 0, true, false, strerror_text},
    {"CONNECT opened, then the target failed",
     with(facts(exit_scheme::http, CURLE_RECV_ERROR), [](auto& f) { f.connect_code = 200; }), party::target, false,
     true, 0, true, false, strerror_text},
    {"plain http through a proxy: 407 response", facts(exit_scheme::http, CURLE_OK, 407), party::exit, true, false, 407,
     true, false, "proxy answered 407"},
    {"tinyproxy: 401 with a proxy challenge",
     with(facts(exit_scheme::http, CURLE_OK, 401), [](auto& f) { f.proxy_challenge = true; }), party::exit, true, false,
     401, true, false, "proxy answered 401"},
    {"a target's 401 is a result", facts(exit_scheme::http, CURLE_OK, 401), party::none, true, true, 401, false, false,
     ""},
    {"a 407 through socks came from the target", facts(exit_scheme::socks5, CURLE_OK, 407), party::none, true, true,
     407, false, false, ""},
    {"proxy timeout before connect is the exit's",
     with(facts(exit_scheme::http, CURLE_OPERATION_TIMEDOUT), [](auto& f) { f.connect_us = 0; }), party::exit, false,
     false, 0, true, true, strerror_text},
    {"proxy timeout after connect is the target's",
     with(facts(exit_scheme::socks5, CURLE_OPERATION_TIMEDOUT), [](auto& f) { f.connect_us = 1000; }), party::target,
     false, false, 0, true, true, strerror_text},
    {"setup failure",
     with(facts(exit_scheme::direct, CURLE_OK, 200),
          [](auto& f) { f.setup_error = "CURLOPT_INTERFACE: A libcurl function was given a bad argument"; }),
     party::client, false, false, 0, false, false,
     "transfer setup failed: CURLOPT_INTERFACE: A libcurl function was given a bad argument"},
};

class classify_table : public ::testing::TestWithParam<outcome_case> {};

TEST_P(classify_table, outcome) {
  const auto& t = GetParam();
  const auto c = classify(t.facts);
  EXPECT_EQ(c.failed, t.failed) << party_name(c.failed);
  EXPECT_EQ(c.completed, t.completed);
  EXPECT_EQ(c.connected, t.connected);
  EXPECT_EQ(c.status, t.status);
  EXPECT_EQ(c.retryable, t.retryable);
  EXPECT_EQ(c.overload, t.overload);
  EXPECT_FALSE(c.banned);
  EXPECT_EQ(c.what, t.what != strerror_text ? t.what : curl_easy_strerror(t.facts.rc));
  EXPECT_EQ(c.what.empty(), c.failed == party::none);
}

INSTANTIATE_TEST_SUITE_P(cases, classify_table, ::testing::ValuesIn(cases), [](const auto& info) {
  std::string n;
  for (const char* p = info.param.name; *p != '\0'; ++p) {
    n += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  }
  return n;
});

TEST(classify, latency_sample_is_ttfb_else_total) {
  auto f = facts(exit_scheme::direct, CURLE_OK, 200);
  EXPECT_EQ(classify(f).latency, std::chrono::microseconds(5000));
  f.ttfb_us = 0;
  EXPECT_EQ(classify(f).latency, std::chrono::microseconds(6000));
}

struct ban_case {
  const char* name;
  attempt_facts facts;
  ban_verdict verdict;
  party failed;
  bool retryable;
  bool overload;
  const char* what;
};

const ban_case ban_cases[] = {
    {"no ban leaves a result alone", facts(exit_scheme::direct, CURLE_OK, 403), {}, party::none, false, false, ""},
    {"ban status",
     facts(exit_scheme::direct, CURLE_OK, 403),
     {true, ""},
     party::target,
     true,
     true,
     "status 403 (ban)"},
    {"ban with Retry-After",
     facts(exit_scheme::http, CURLE_OK, 429),
     {true, "120"},
     party::target,
     true,
     true,
     "status 429 (ban, Retry-After 120)"},
    {"a ban pattern on the proxy's 407 keeps the exit's fault",
     facts(exit_scheme::http, CURLE_OK, 407),
     {true, ""},
     party::exit,
     true,
     true,
     "proxy answered 407"},
};

void PrintTo(const ban_case& c, std::ostream* os) {
  *os << c.name;
}

class ban_table : public ::testing::TestWithParam<ban_case> {};

TEST_P(ban_table, outcome) {
  const auto& t = GetParam();
  auto c = classify(t.facts);
  apply_ban(c, t.verdict);
  EXPECT_EQ(c.failed, t.failed) << party_name(c.failed);
  EXPECT_EQ(c.banned, t.verdict.banned);
  EXPECT_EQ(c.retryable, t.retryable);
  EXPECT_EQ(c.overload, t.overload);
  EXPECT_EQ(c.what, t.what);
  EXPECT_TRUE(c.completed);
}

INSTANTIATE_TEST_SUITE_P(cases, ban_table, ::testing::ValuesIn(ban_cases));

TEST(permanent, only_errors_no_exit_can_fix) {
  for (CURLcode rc :
       {CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_TOO_MANY_REDIRECTS, CURLE_FILESIZE_EXCEEDED,
        CURLE_BAD_CONTENT_ENCODING, CURLE_COULDNT_RESOLVE_HOST, CURLE_PEER_FAILED_VERIFICATION}) {
    EXPECT_TRUE(permanent(rc)) << rc;
  }
  for (CURLcode rc : {CURLE_OK, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_RECV_ERROR, CURLE_SEND_ERROR,
                      CURLE_SSL_CONNECT_ERROR, CURLE_GOT_NOTHING, CURLE_PROXY}) {
    EXPECT_FALSE(permanent(rc)) << rc;
  }
}

}  // namespace
}  // namespace exitpool::fetch

namespace exitpool::fetch {
namespace {

// What an attempt tells the pool. Health: a completed transfer through the exit is a
// success (latency: time to first byte); the exit's failures count against it; the
// target's or the request's failures before a response say nothing (connected false).
struct pool_case {
  const char* name;
  attempt_facts facts;
  bool banned;
  pool::fault who;
  bool connected;
  int status;
};

void PrintTo(const pool_case& c, std::ostream* os) {
  *os << c.name;
}

const pool_case pool_cases[] = {
    {"a response is a success", facts(exit_scheme::direct, CURLE_OK, 200), false, pool::fault::none, true, 200},
    {"a 404 is a success", facts(exit_scheme::socks5, CURLE_OK, 404), false, pool::fault::none, true, 404},
    {"a ban is the target's, through a working exit", facts(exit_scheme::direct, CURLE_OK, 429), true,
     pool::fault::target, true, 429},
    {"the proxy's 407 is the exit's", facts(exit_scheme::http, CURLE_OK, 407), false, pool::fault::exit, false, 407},
    {"a dead proxy is the exit's", facts(exit_scheme::http, CURLE_COULDNT_CONNECT), false, pool::fault::exit, false, 0},
    {"a tunnel opened to a target that timed out says nothing",
     with(facts(exit_scheme::http, CURLE_OPERATION_TIMEDOUT),
          [](auto& f) {
            f.connect_us = 1000;
            f.connect_code = 200;
          }),
     false, pool::fault::target, false, 0},
    {"a malformed URL is the client's", facts(exit_scheme::direct, CURLE_URL_MALFORMAT), false, pool::fault::client,
     false, 0},
};

class pool_table : public ::testing::TestWithParam<pool_case> {};

TEST_P(pool_table, outcome) {
  const auto& t = GetParam();
  auto c = classify(t.facts);
  std::optional<std::chrono::milliseconds> ban;
  if (t.banned) {
    ban = std::chrono::seconds(120);
    apply_ban(c, {true, "120"});
  }
  const auto o = outcome_of(c, ban);
  EXPECT_EQ(o.who, t.who);
  EXPECT_EQ(o.connected, t.connected);
  EXPECT_EQ(o.status, t.status);
  EXPECT_EQ(o.latency, std::chrono::microseconds(5000));  // time to first byte
  EXPECT_EQ(o.ban, ban);
}

INSTANTIATE_TEST_SUITE_P(cases, pool_table, ::testing::ValuesIn(pool_cases));

}  // namespace
}  // namespace exitpool::fetch
