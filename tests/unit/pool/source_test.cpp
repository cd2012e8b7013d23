#include "pool/source.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace exitpool::pool {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + 1000h;

source_spec url_source(std::chrono::milliseconds refresh = 60s) {
  source_spec s;
  s.location = "http://127.0.0.1:9/list?key={key}&type=isp";
  s.key = "SeCrEt/42";
  s.refresh = refresh;
  return s;
}

fetch_result answer(int status, std::string body, std::string etag = "") {
  fetch_result r;
  r.status = status;
  r.body = std::move(body);
  r.etag = std::move(etag);
  return r;
}

TEST(source, names_never_show_the_key) {
  auto s = url_source();
  EXPECT_TRUE(s.is_url());
  EXPECT_EQ(s.name(), "http://127.0.0.1:9/list?key={key}&type=isp");
  EXPECT_EQ(s.request_url(), "http://127.0.0.1:9/list?key=SeCrEt%2F42&type=isp");
  s.location = "https://user:pw@api.example/list";
  s.key_header = "X-Api-Key";
  EXPECT_EQ(s.name(), "https://user:***@api.example/list");
  EXPECT_EQ(redact_key("bad key SeCrEt/42 or SeCrEt%2F42", s), "bad key *** or ***");
  source_spec file;
  file.location = "pool.txt";
  EXPECT_FALSE(file.is_url());
  EXPECT_EQ(file.name(), "pool.txt");
}

TEST(source, checks_what_a_source_needs) {
  EXPECT_EQ(check_source(url_source()), "");
  auto no_key = url_source();
  no_key.key.clear();
  EXPECT_NE(check_source(no_key).find("no key is given"), std::string::npos);
  auto unused_key = url_source();
  unused_key.location = "http://127.0.0.1:9/list";
  EXPECT_NE(check_source(unused_key).find("the URL has no {key}"), std::string::npos);
  unused_key.key_header = "X-Api-Key";
  EXPECT_EQ(check_source(unused_key), "");
  unused_key.key_header = "X-Api-Key: x";
  EXPECT_NE(check_source(unused_key).find("takes a header name"), std::string::npos);
  source_spec file;
  file.location = "pool.txt";
  file.refresh = 10s;
  EXPECT_NE(check_source(file).find("--pool-refresh is for URL sources"), std::string::npos);
  file.refresh = 0s;
  file.location = "ftp://host/list";
  EXPECT_NE(check_source(file).find("only files and http"), std::string::npos);
  auto too_often = url_source(500ms);
  EXPECT_NE(check_source(too_often).find("at least 1s"), std::string::npos);
  auto bad_tags = url_source();
  bad_tags.defaults.tags = "weight=zero";
  EXPECT_NE(check_source(bad_tags), "");
}

TEST(source, backoff_doubles_with_jitter_up_to_the_refresh_interval) {
  // jitter01 = 1 → the full step; 0 → half of it.
  EXPECT_EQ(retry_delay(1, 60s, 1.0), 1000ms);
  EXPECT_EQ(retry_delay(2, 60s, 1.0), 2000ms);
  EXPECT_EQ(retry_delay(3, 60s, 1.0), 4000ms);
  EXPECT_EQ(retry_delay(3, 60s, 0.0), 2000ms);
  EXPECT_EQ(retry_delay(3, 60s, 0.5), 3000ms);
  EXPECT_EQ(retry_delay(7, 60s, 1.0), 60000ms);       // 64 s capped at the interval
  EXPECT_EQ(retry_delay(40, 60s, 1.0), 60000ms);      // no overflow
  EXPECT_EQ(retry_delay(40, 0s, 1.0), 300000ms);      // no schedule: at most 5 minutes
  EXPECT_EQ(retry_delay(1, 60s, 1.0, 30s), 30000ms);  // Retry-After wins when later
  EXPECT_EQ(retry_delay(7, 60s, 1.0, 30s), 60000ms);
}

TEST(source, a_good_answer_replaces_the_list_and_a_bad_one_keeps_it) {
  const auto spec = url_source(60s);
  source_state st;
  auto d = apply_fetch(st, spec, answer(200, "10.0.0.1:80\n10.0.0.2:80\n", "\"v1\""), t0, 0.5);
  EXPECT_EQ(d.verdict, fetch_verdict::changed);
  ASSERT_EQ(st.exits.size(), 2U);
  EXPECT_EQ(st.next_fetch, t0 + 60s);
  EXPECT_EQ(conditional_headers(st), std::vector<std::string>{"If-None-Match: \"v1\""});

  struct bad {
    fetch_result r;
    std::string error;
  };
  fetch_result timeout;
  timeout.error = "timed out after 2000 ms";
  std::vector<bad> bads = {
      {answer(500, "oops"), "http://127.0.0.1:9/list?key={key}&type=isp: HTTP 500"},
      {timeout, "http://127.0.0.1:9/list?key={key}&type=isp: timed out"},
      {answer(200, "<html>quota exceeded</html>"), "http://127.0.0.1:9/list?key={key}&type=isp:1: "},
      {answer(200, "[]"), "http://127.0.0.1:9/list?key={key}&type=isp: empty list"},
      {answer(200, ""), "http://127.0.0.1:9/list?key={key}&type=isp: empty list"},
      {answer(302, ""), "http://127.0.0.1:9/list?key={key}&type=isp: HTTP 302 (expected 200 with the list; redirects"},
  };
  int failures = 0;
  for (const auto& b : bads) {
    d = apply_fetch(st, spec, b.r, t0 + 1s, 1.0);
    ++failures;
    EXPECT_EQ(d.verdict, fetch_verdict::failed) << b.error;
    EXPECT_EQ(d.error.substr(0, b.error.size()), b.error);
    EXPECT_EQ(st.exits.size(), 2U) << "the last good list stays";
    EXPECT_EQ(st.failures, failures);
    EXPECT_EQ(st.next_fetch, t0 + 1s + retry_delay(failures, 60s, 1.0));
  }
  // The conditional headers still describe the last good list.
  EXPECT_EQ(conditional_headers(st), std::vector<std::string>{"If-None-Match: \"v1\""});
  const auto status = status_of(spec, st, t0 + 2s);
  EXPECT_FALSE(status.ok);
  EXPECT_EQ(status.exits, 2U);
  EXPECT_EQ(status.fetches_failed, bads.size());
  EXPECT_EQ(status.last_success_age_s, 2.0);

  // 304: no change, the failures end.
  d = apply_fetch(st, spec, answer(304, ""), t0 + 3s, 0.5);
  EXPECT_EQ(d.verdict, fetch_verdict::unchanged);
  EXPECT_EQ(st.failures, 0);
  EXPECT_EQ(st.next_fetch, t0 + 3s + 60s);
  // The same bytes without an ETag: no change either.
  d = apply_fetch(st, spec, answer(200, "10.0.0.1:80\n10.0.0.2:80\n"), t0 + 4s, 0.5);
  EXPECT_EQ(d.verdict, fetch_verdict::unchanged);
  d = apply_fetch(st, spec, answer(200, "10.0.0.2:80\n10.0.0.3:80\n"), t0 + 5s, 0.5);
  EXPECT_EQ(d.verdict, fetch_verdict::changed);
  EXPECT_EQ(st.exits[1].id, "10.0.0.3:80");
  EXPECT_TRUE(conditional_headers(st).empty());
  auto dated = answer(200, "10.0.0.4:80\n", "W/\"v3\"");
  dated.last_modified = "Tue, 01 Dec 2026 06:00:00 GMT";
  EXPECT_EQ(apply_fetch(st, spec, dated, t0 + 6s, 0.5).verdict, fetch_verdict::changed);
  EXPECT_EQ(conditional_headers(st),
            (std::vector<std::string>{"If-None-Match: W/\"v3\"", "If-Modified-Since: Tue, 01 Dec 2026 06:00:00 GMT"}));
}

TEST(source, a_304_before_any_list_is_a_failure) {
  source_state st;
  EXPECT_TRUE(conditional_headers(st).empty());
  const auto d = apply_fetch(st, url_source(), answer(304, ""), t0, 0.5);
  EXPECT_EQ(d.verdict, fetch_verdict::failed);
  EXPECT_FALSE(st.loaded);
}

TEST(source, errors_never_hold_the_key) {
  auto spec = url_source();
  source_state st;
  const auto d = apply_fetch(st, spec, answer(200, "invalid key SeCrEt/42\n"), t0, 0.5);
  EXPECT_EQ(d.verdict, fetch_verdict::failed);
  EXPECT_EQ(d.error.find("SeCrEt"), std::string::npos) << d.error;
  EXPECT_EQ(st.last_error.find("SeCrEt"), std::string::npos);
}

TEST(source, an_empty_answer_is_a_list_when_the_source_allows_it) {
  auto spec = url_source();
  spec.allow_empty = true;
  source_state st;
  EXPECT_EQ(apply_fetch(st, spec, answer(200, "10.0.0.1:80\n"), t0, 0.5).verdict, fetch_verdict::changed);
  EXPECT_EQ(apply_fetch(st, spec, answer(200, ""), t0 + 1s, 0.5).verdict, fetch_verdict::changed);
  EXPECT_TRUE(st.exits.empty());
}

TEST(source, merging_keeps_the_first_of_a_duplicate_id) {
  auto list = [](std::string name, std::vector<std::string> ids) {
    named_list l{std::move(name), {}};
    for (auto& id : ids) {
      proto::exit_spec e;
      e.id = id;
      l.exits.push_back(std::move(e));
    }
    return l;
  };
  std::vector<named_list> lists;
  lists.push_back(list("a.txt", {"x", "y"}));
  lists.push_back(list("http://api/list", {"z", "x"}));
  lists.push_back(list("b.txt", {}));
  const auto merged = merge_sources(std::move(lists));
  ASSERT_EQ(merged.exits.size(), 3U);
  EXPECT_EQ(merged.exits[0].id, "x");
  EXPECT_EQ(merged.exits[1].id, "y");
  EXPECT_EQ(merged.exits[2].id, "z");
  EXPECT_EQ(merged.duplicates, std::vector<std::string>{"x from http://api/list (already from a.txt)"});
}

}  // namespace
}  // namespace exitpool::pool
