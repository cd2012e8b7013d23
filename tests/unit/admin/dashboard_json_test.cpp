#include "admin/dashboard_json.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace exitpool::admin {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
const pool::time_point t0 = pool::time_point{} + 1000h;

std::shared_ptr<const pool::snapshot> make_pool() {
  auto specs = proto::parse_pool_text(
      "http://alice:s3cret-password@10.0.0.1:8080 id=a country=us type=isp tier=1\n"
      "socks5h://bob:other%20secret@10.0.0.2:1080 id=b country=nl type=residential pool=blue\n"
      "direct://127.0.0.21 id=c\n",
      "pool.txt");
  return pool::snapshot::build(std::move(specs));
}

TEST(DashboardQuery, ParsesAndDecodes) {
  auto q = parse_dashboard_query("country=US&state=ejected&tag=type%3Disp&limit=20&x=1");
  EXPECT_EQ(q.country, "us");
  EXPECT_EQ(q.state, "ejected");
  EXPECT_EQ(q.tag, "type=isp");
  EXPECT_EQ(q.limit, 20u);
  EXPECT_EQ(parse_dashboard_query("tag=a+b%zz&limit=nope").tag, "a b%zz");
  EXPECT_EQ(parse_dashboard_query("limit=nope").limit, 1000u);
  EXPECT_EQ(parse_dashboard_query("limit=0").limit, 1u);
  EXPECT_EQ(parse_dashboard_query("").country, "");
}

TEST(DashboardQuery, Filters) {
  auto snap = make_pool();
  const auto& a = *snap->exits()[0];
  const auto& b = *snap->exits()[1];
  const auto& c = *snap->exits()[2];
  const auto h = pool::exit_state::healthy;
  struct row {
    const char* query;
    bool a, b, c;
  };
  for (const auto& r : std::initializer_list<row>{
           {"", true, true, true},
           {"country=nl", false, true, false},
           {"country=-", false, false, true},
           {"state=healthy", true, true, true},
           {"state=ejected", false, false, false},
           {"tag=type=isp", true, false, false},
           {"tag=pool=blue", false, true, false},
           {"tag=resid", false, true, false},
           {"tag=c", false, false, true},
           {"tag=tier=1", true, false, false},
       }) {
    auto q = parse_dashboard_query(r.query);
    EXPECT_EQ(dashboard_matches(q, a, h), r.a) << r.query;
    EXPECT_EQ(dashboard_matches(q, b, h), r.b) << r.query;
    EXPECT_EQ(dashboard_matches(q, c, h), r.c) << r.query;
  }
}

TEST(DashboardJson, EverySectionWithoutPasswords) {
  auto snap = make_pool();
  pool::health_config hc;
  hc.failures_to_eject = 1;
  hc.base_cooldown = 10s;
  snap->exits()[0]->report({true, 3000us}, t0, hc);
  snap->exits()[1]->report({false, 0us}, t0, hc);  // ejected
  pool::local_state bans;
  bans.ban(*snap->exits()[0], "shop.example", t0 + 60s);
  bans.ban(*snap->exits()[2], "shop.example", t0 + 60s);
  bans.ban(*snap->exits()[2], "news.example", t0 + 60s);
  metrics_totals totals;
  totals.requests[0][0] = 40;
  totals.requests[2][static_cast<std::size_t>(request_outcome::timeout)] = 2;
  traffic_history history;
  for (int i = 0; i <= 20; ++i) {
    traffic_sample s;
    s.at = std::chrono::steady_clock::time_point{} + std::chrono::seconds(i);
    s.requests = 2 * static_cast<std::uint64_t>(i);
    history.record(s);
  }
  reload_log reloads;
  reloads.add({std::chrono::system_clock::time_point{} + 100s, true, 3, 0, "startup"});
  reloads.add({std::chrono::system_clock::time_point{} + 200s, false, 3, 0.01, "pool.txt:2: bad line"});

  dashboard_inputs in;
  in.snap = snap.get();
  in.now = t0 + 1s;
  in.bans = &bans;
  in.totals = &totals;
  in.history = &history;
  in.reloads = &reloads;
  in.started = std::chrono::system_clock::time_point{} + 1000s;
  in.wall_now = in.started + 90s;
  const std::string text = render_dashboard_json(in, {});
  EXPECT_EQ(text.find("s3cret"), std::string::npos);
  EXPECT_EQ(text.find("other secret"), std::string::npos);
  EXPECT_EQ(text.find("other%20secret"), std::string::npos);
  auto v = json::parse(text);
  EXPECT_DOUBLE_EQ(v.at("uptime_s").to_number<double>(), 90);
  const auto& p = v.at("pool").as_object();
  EXPECT_EQ(p.at("exits").to_number<int>(), 3);
  EXPECT_EQ(p.at("matching").to_number<int>(), 3);
  EXPECT_EQ(p.at("by_state").at("healthy").to_number<int>(), 2);
  EXPECT_EQ(p.at("by_state").at("ejected").to_number<int>(), 1);
  EXPECT_EQ(p.at("by_state").at("probing").to_number<int>(), 0);
  EXPECT_EQ(p.at("by_country").at("us").to_number<int>(), 1);
  EXPECT_EQ(p.at("by_country").at("-").to_number<int>(), 1);
  EXPECT_EQ(p.at("by_tier").at("1").to_number<int>(), 1);
  EXPECT_EQ(p.at("by_tier").at("0").to_number<int>(), 2);
  EXPECT_EQ(json::serialize(p.at("countries")), R"(["-","nl","us"])");
  ASSERT_EQ(v.at("exits").as_array().size(), 3u);
  EXPECT_EQ(v.at("exits").as_array()[1].at("state").as_string(), "ejected");
  EXPECT_GT(v.at("exits").as_array()[1].at("cooldown_remaining_s").to_number<double>(), 8);
  const auto& t = v.at("traffic").as_object();
  EXPECT_EQ(t.at("requests").to_number<int>(), 42);
  EXPECT_EQ(t.at("errors").to_number<int>(), 2);
  EXPECT_EQ(t.at("by_outcome").at("timeout").to_number<int>(), 2);
  EXPECT_EQ(t.at("active_bans").to_number<int>(), 3);
  EXPECT_DOUBLE_EQ(v.at("rates").at("requests_per_s").to_number<double>(), 2);
  EXPECT_EQ(v.at("history").at("step_s").to_number<int>(), 10);
  EXPECT_EQ(v.at("history").at("steps").as_array().size(), 2u);
  const auto& top = v.at("top_ban_hosts").as_array();
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].at("host").as_string(), "shop.example");
  EXPECT_EQ(top[0].at("exits").to_number<int>(), 2);
  const auto& rl = v.at("reloads").as_array();
  ASSERT_EQ(rl.size(), 2u);
  EXPECT_FALSE(rl[0].at("ok").as_bool()) << "newest first";
  EXPECT_EQ(rl[1].at("what").as_string(), "startup");
  // Each exit's row carries its own bans, from one walk of the table.
  const auto& c_bans = v.at("exits").as_array()[2].at("bans").as_array();
  ASSERT_EQ(c_bans.size(), 2u);
  EXPECT_EQ(c_bans[0].at("host").as_string(), "news.example") << "sorted by host";
  EXPECT_EQ(v.at("exits").as_array()[0].at("bans").as_array().size(), 1u);
  EXPECT_TRUE(v.at("exits").as_array()[1].at("bans").as_array().empty());
  // In-process state: no fleet.
  EXPECT_FALSE(v.at("fleet").at("shared").as_bool());
  EXPECT_TRUE(v.at("fleet").at("backend").is_null());
  EXPECT_EQ(v.at("fleet").at("gateways").to_number<int>(), 1);
}

TEST(DashboardJson, FleetWhenTheStateIsShared) {
  auto snap = make_pool();
  dashboard_inputs in;
  in.snap = snap.get();
  in.now = t0;
  in.state_backend = "redis://10.0.0.5:6379/0";
  in.backend_up = false;
  in.fleet_gateways = 3;
  auto v = json::parse(render_dashboard_json(in, {}));
  const auto& f = v.at("fleet").as_object();
  EXPECT_TRUE(f.at("shared").as_bool());
  EXPECT_EQ(f.at("backend").as_string(), "redis://10.0.0.5:6379/0");
  EXPECT_FALSE(f.at("backend_up").as_bool());
  EXPECT_EQ(f.at("gateways").to_number<int>(), 3);
}

TEST(DashboardJson, FilterAndLimitNarrowTheRowsNotThePoolTotal) {
  auto snap = make_pool();
  dashboard_inputs in;
  in.snap = snap.get();
  in.now = t0;
  auto q = parse_dashboard_query("tag=type%3Disp");
  auto v = json::parse(render_dashboard_json(in, q));
  EXPECT_EQ(v.at("pool").at("exits").to_number<int>(), 3);
  EXPECT_EQ(v.at("pool").at("matching").to_number<int>(), 1);
  EXPECT_EQ(v.at("exits").as_array().size(), 1u);
  EXPECT_EQ(v.at("filter").at("tag").as_string(), "type=isp");
  v = json::parse(render_dashboard_json(in, parse_dashboard_query("limit=2")));
  EXPECT_EQ(v.at("pool").at("matching").to_number<int>(), 3);
  EXPECT_EQ(v.at("pool").at("listed").to_number<int>(), 2);
  // No metrics, history or reloads: still every key, with zeros.
  EXPECT_EQ(v.at("traffic").at("requests").to_number<int>(), 0);
  EXPECT_TRUE(v.at("history").at("steps").as_array().empty());
  EXPECT_TRUE(v.at("reloads").as_array().empty());
}

}  // namespace
}  // namespace exitpool::admin
