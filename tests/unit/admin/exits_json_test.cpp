#include "admin/exits_json.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "pool/attempt.hpp"

namespace exitpool::admin {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
const pool::time_point t0 = pool::time_point{} + 1000h;

std::shared_ptr<const pool::snapshot> make_pool() {
  auto specs = proto::parse_pool_text(
      "http://alice:s3cret-password@10.0.0.1:8080 id=a country=US city=Paris type=residential weight=2 tier=1\n"
      "socks5h://10.0.0.2:1080 id=b\n"
      "direct://127.0.0.21 id=c\n",
      "pool.txt");
  return pool::snapshot::build(std::move(specs));
}

TEST(ExitsJson, ParsesBackWithEveryField) {
  auto snap = make_pool();
  pool::health_config h;
  h.failures_to_eject = 1;
  h.base_cooldown = 10s;
  snap->exits()[0]->report({true, 4000us}, t0, h);
  snap->exits()[0]->report({true, 4000us}, t0, h);
  snap->exits()[1]->report({false, 0us}, t0, h);  // ejected for 10 s
  pool::lease busy(*snap->exits()[2]);

  const std::string text = render_exits_json(*snap, t0 + 4s);
  EXPECT_EQ(text.find("s3cret"), std::string::npos) << "no password in /exits";
  json::value v = json::parse(text);
  const auto& exits = v.as_object().at("exits").as_array();
  ASSERT_EQ(exits.size(), 3u);
  for (const auto& ev : exits) {
    const auto& e = ev.as_object();
    for (const char* key : {"id", "url", "scheme", "tags", "state", "inflight", "successes", "failures", "success_rate",
                            "ewma_latency_ms", "tier", "consecutive_failures", "cooldown_remaining_s", "bans"}) {
      EXPECT_TRUE(e.contains(key)) << key;
    }
    EXPECT_TRUE(e.at("bans").is_array());
    EXPECT_TRUE(e.at("bans").as_array().empty());
  }
  const auto& a = exits[0].as_object();
  EXPECT_EQ(a.at("id").as_string(), "a");
  EXPECT_EQ(a.at("url").as_string(), "http://alice:***@10.0.0.1:8080");
  EXPECT_EQ(a.at("scheme").as_string(), "http");
  EXPECT_EQ(a.at("state").as_string(), "healthy");
  EXPECT_EQ(a.at("tier").to_number<int>(), 1);
  EXPECT_EQ(a.at("successes").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(a.at("failures").to_number<std::uint64_t>(), 0u);
  EXPECT_DOUBLE_EQ(a.at("success_rate").to_number<double>(), 1.0);
  EXPECT_NEAR(a.at("ewma_latency_ms").to_number<double>(), 4.0, 1e-9);
  EXPECT_DOUBLE_EQ(a.at("cooldown_remaining_s").to_number<double>(), 0.0);
  const auto& tags = a.at("tags").as_object();
  EXPECT_EQ(tags.at("country").as_string(), "us");
  EXPECT_EQ(tags.at("city").as_string(), "paris");
  EXPECT_EQ(tags.at("type").as_string(), "residential");
  EXPECT_DOUBLE_EQ(tags.at("weight").to_number<double>(), 2.0);
  EXPECT_EQ(tags.at("tier").as_string(), "1");

  const auto& b = exits[1].as_object();
  EXPECT_EQ(b.at("state").as_string(), "ejected");
  EXPECT_DOUBLE_EQ(b.at("success_rate").to_number<double>(), 0.0);
  EXPECT_TRUE(b.at("ewma_latency_ms").is_null());
  EXPECT_EQ(b.at("consecutive_failures").to_number<int>(), snap->exits()[1]->consecutive_failures());
  EXPECT_NEAR(b.at("cooldown_remaining_s").to_number<double>(), 6.0, 1e-6);
  EXPECT_TRUE(b.at("tags").as_object().at("country").is_null());
  EXPECT_EQ(b.at("scheme").as_string(), "socks5h");

  const auto& c = exits[2].as_object();
  EXPECT_EQ(c.at("inflight").to_number<int>(), 1);
  EXPECT_TRUE(c.at("success_rate").is_null());
  EXPECT_EQ(c.at("scheme").as_string(), "direct");
  EXPECT_EQ(c.at("tier").to_number<int>(), 0);

  // After the cool-down: on trial.
  json::value later = json::parse(render_exits_json(*snap, t0 + 11s));
  EXPECT_EQ(later.at("exits").as_array()[1].at("state").as_string(), "probing");
  EXPECT_DOUBLE_EQ(later.at("exits").as_array()[1].at("cooldown_remaining_s").to_number<double>(), 0.0);
}

TEST(ExitsJson, ListsBansOfEachExit) {
  auto snap = make_pool();
  pool::local_state bans;
  bans.ban(*snap->exits()[0], "example.com", t0 + 30s);
  bans.ban(*snap->exits()[0], "a.example", t0 + 5s);
  bans.ban(*snap->exits()[1], "gone.example", t0 - 1s);  // already over
  json::value v = json::parse(render_exits_json(*snap, t0, &bans));
  const auto& a = v.at("exits").as_array()[0].at("bans").as_array();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].at("host").as_string(), "a.example");
  EXPECT_NEAR(a[0].at("remaining_s").to_number<double>(), 5.0, 1e-6);
  EXPECT_EQ(a[0].at("decided_by").as_string(), "local");  // in-process state: every verdict is ours
  EXPECT_FALSE(a[0].as_object().contains("gateway"));
  EXPECT_EQ(a[1].at("host").as_string(), "example.com");
  EXPECT_TRUE(v.at("exits").as_array()[1].at("bans").as_array().empty());
}

TEST(ExitsJson, ListsEachSourceWithoutItsKey) {
  pool::source_spec spec;
  spec.location = "http://127.0.0.1:9/list?key={key}";
  spec.key = "s3cr3tkey";
  spec.refresh = 60s;
  pool::source_state st;
  pool::fetch_result r;
  r.status = 200;
  r.body = "10.0.0.1:80\n";
  pool::apply_fetch(st, spec, r, t0, 0.5);
  r.status = 500;
  pool::apply_fetch(st, spec, r, t0 + 1s, 0.5);
  const std::vector<pool::source_status> sources = {pool::status_of(spec, st, t0 + 2s)};
  auto snap = pool::snapshot::build({});
  const auto text = render_exits_json(*snap, t0 + 2s, nullptr, sources);
  EXPECT_EQ(text.find("s3cr3tkey"), std::string::npos);
  json::value v = json::parse(text);
  const auto& src = v.at("sources").as_array().at(0).as_object();
  EXPECT_EQ(src.at("source").as_string(), "http://127.0.0.1:9/list?key={key}");
  EXPECT_EQ(src.at("kind").as_string(), "url");
  EXPECT_EQ(src.at("exits").to_number<std::uint64_t>(), 1U);
  EXPECT_FALSE(src.at("ok").as_bool());
  EXPECT_EQ(src.at("error").as_string(), "http://127.0.0.1:9/list?key={key}: HTTP 500 (expected 200 with the list)");
  EXPECT_EQ(src.at("failures").to_number<std::int64_t>(), 1);
  EXPECT_NEAR(src.at("last_success_age_s").to_number<double>(), 2.0, 1e-9);
  EXPECT_EQ(src.at("fetches").at("changed").to_number<std::uint64_t>(), 1U);
  EXPECT_EQ(src.at("fetches").at("failed").to_number<std::uint64_t>(), 1U);
}

TEST(ExitsJson, AProviderLineListsItsTemplatesAndLiveVirtualExits) {
  auto snap = pool::snapshot::build(
      proto::parse_pool_text("http://acme:s3cret@10.0.0.1:8000 provider=oxylabs countries=us,de id=ox\n", "pool.txt"));
  pool::local_state st;
  pool::driver d(pool::policy::round_robin, 1, st, 30s);
  auto r = d.begin(snap, {.f = {.country = "de"}, .sticky_key = "alice\x1fs1", .host = "shop.test"}, t0);
  ASSERT_TRUE(r.granted);
  r.granted.complete({.connected = true, .status = 429, .ban = 60s}, t0);
  const std::string vid = r.granted.chosen().id();
  d.begin(snap, {.host = "shop.test"}, t0);  // rotation: lives only with its attempt
  const std::string text = render_exits_json(*snap, t0 + 1s, &st);
  EXPECT_EQ(text.find("s3cret"), std::string::npos) << "no password in /exits";
  json::value v = json::parse(text);
  const auto& line = v.at("exits").as_array()[0].as_object();
  EXPECT_EQ(line.at("provider").at("preset").as_string(), "oxylabs");
  EXPECT_EQ(line.at("provider").at("countries").as_array().size(), 2u);
  EXPECT_EQ(line.at("provider").at("cities").as_array().size(), 0u);
  EXPECT_TRUE(line.at("bans").as_array().empty());  // the ban is the virtual exit's
  const auto& live = line.at("virtual_exits").as_array();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].at("id").as_string(), vid);
  EXPECT_EQ(live[0].at("line").as_string(), "ox");
  EXPECT_EQ(live[0].at("tags").at("country").as_string(), "de");
  EXPECT_EQ(live[0].at("bans").as_array()[0].at("host").as_string(), "shop.test");
  EXPECT_EQ(std::string(live[0].at("url").as_string()).find("customer-acme-cc-DE-sessid-"), 7u);  // after http://
}

TEST(ExitsJson, EmptyPool) {
  auto snap = pool::snapshot::build({});
  json::value v = json::parse(render_exits_json(*snap, t0));
  EXPECT_TRUE(v.as_object().at("exits").as_array().empty());
}

}  // namespace
}  // namespace exitpool::admin
