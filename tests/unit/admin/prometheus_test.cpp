#include "admin/prometheus.hpp"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace exitpool::admin {
namespace {

using namespace std::chrono_literals;
const pool::time_point t0 = pool::time_point{} + 1000h;

proto::exit_spec spec(std::string id) {
  proto::exit_spec s;
  s.scheme = proto::exit_scheme::http;
  s.host = "10.0.0.1";
  s.port = 8080;
  s.user = "alice";
  s.pass = "s3cret-password";
  s.id = std::move(id);
  return s;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    out.push_back(l);
  }
  return out;
}

// A sample line of the text format 0.0.4: name, optional {label="value",...}, value.
const std::regex sample_re(
    R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*")*\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|[+-]Inf|NaN)$)re");
const std::regex help_re(R"re(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)re");
const std::regex type_re(R"re(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)re");

// The value of the sample `name{labels}` exactly as written (labels as rendered), or -1.
double value_of(const std::string& text, const std::string& series) {
  for (const auto& l : lines(text)) {
    if (l.size() > series.size() && l.compare(0, series.size(), series) == 0 && l[series.size()] == ' ') {
      return std::stod(l.substr(series.size() + 1));
    }
  }
  return -1;
}

struct fixture {
  metrics_registry reg{3};
  std::shared_ptr<const pool::snapshot> snap;
  fixture() {
    std::vector<proto::exit_spec> specs;
    specs.push_back(spec("plain"));
    specs.push_back(spec("we\"ird\\id\nx"));
    specs.push_back(spec("down"));
    snap = pool::snapshot::build(std::move(specs));
    pool::health_config h;
    h.failures_to_eject = 1;
    snap->exits()[2]->report({false, 0us}, t0, h);    // "down"
    snap->exits()[0]->report({true, 2500us}, t0, h);  // "plain"
  }
};

TEST(Prometheus, EveryLineFollowsTheGrammarAndFamiliesAreDeclaredOnce) {
  fixture f;
  f.reg.shard(0).on_dial(pool::failure::connection_refused, 0.2);
  f.reg.shard(1).on_dial(pool::failure::none, 0.02);
  const std::string text = render_prometheus(f.reg, *f.snap, t0);
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  std::map<std::string, int> helps, types;
  std::map<std::string, std::string> type_of;
  std::string current;
  for (const auto& l : lines(text)) {
    std::smatch m;
    if (l.rfind("# HELP ", 0) == 0) {
      ASSERT_TRUE(std::regex_match(l, m, help_re)) << l;
      helps[m[1]]++;
      current = m[1];
    } else if (l.rfind("# TYPE ", 0) == 0) {
      ASSERT_TRUE(std::regex_match(l, m, type_re)) << l;
      types[m[1]]++;
      type_of[m[1]] = m[2];
      EXPECT_EQ(m[1], current) << "TYPE right after its HELP";
    } else {
      ASSERT_TRUE(std::regex_match(l, m, sample_re)) << "bad sample line: " << l;
      std::string name = m[1];
      // Samples belong to the family declared just before them.
      if (type_of[current] == "histogram") {
        EXPECT_TRUE(name == current + "_bucket" || name == current + "_sum" || name == current + "_count") << l;
      } else {
        EXPECT_EQ(name, current) << l;
      }
      EXPECT_TRUE(name.rfind("exitpool_", 0) == 0) << l;
    }
  }
  for (const auto& [name, n] : helps) {
    EXPECT_EQ(n, 1) << name;
    EXPECT_EQ(types[name], 1) << name;
    if (type_of[name] == "counter") {
      EXPECT_TRUE(name.size() > 6 && name.substr(name.size() - 6) == "_total") << name;
    }
  }
  EXPECT_EQ(helps.size(), types.size());
  EXPECT_EQ(type_of["exitpool_dial_duration_seconds"], "histogram");
  EXPECT_EQ(type_of["exitpool_relayed_bytes_total"], "counter");
  EXPECT_EQ(type_of["exitpool_exit_up"], "gauge");
  EXPECT_EQ(text.find("s3cret"), std::string::npos) << "no password in /metrics";
}

TEST(Prometheus, CountersAggregateAcrossShards) {
  fixture f;
  f.reg.shard(0).on_accept(client_protocol::http);
  f.reg.shard(1).on_accept(client_protocol::http);
  f.reg.shard(2).on_accept(client_protocol::socks5);
  f.reg.shard(0).on_request(client_protocol::connect, request_outcome::dial_failed);
  f.reg.shard(2).on_request(client_protocol::connect, request_outcome::dial_failed);
  f.reg.shard(1).on_bytes(100, 1000);
  f.reg.shard(2).on_bytes(5, 7);
  f.reg.shard(0).on_http_response(200);
  f.reg.shard(1).on_http_response(299);
  f.reg.shard(2).on_dial(pool::failure::dns_error, 0.5);
  f.reg.shard(0).on_dial(pool::failure::dns_error, 0.5);
  f.reg.shard(1).on_tunnel_open();
  f.reg.shard(2).on_tunnel_open();
  const std::string text = render_prometheus(f.reg, *f.snap, t0);
  EXPECT_EQ(value_of(text, R"(exitpool_client_connections_total{protocol="http"})"), 2);
  EXPECT_EQ(value_of(text, R"(exitpool_client_connections_total{protocol="socks5"})"), 1);
  EXPECT_EQ(value_of(text, R"(exitpool_client_connections_total{protocol="connect"})"), 0);
  EXPECT_EQ(value_of(text, R"(exitpool_requests_total{protocol="connect",outcome="dial_failed"})"), 2);
  EXPECT_EQ(value_of(text, R"(exitpool_relayed_bytes_total{direction="client_to_upstream"})"), 105);
  EXPECT_EQ(value_of(text, R"(exitpool_relayed_bytes_total{direction="upstream_to_client"})"), 1007);
  EXPECT_EQ(value_of(text, R"(exitpool_http_responses_total{code="2xx"})"), 2);
  EXPECT_EQ(value_of(text, R"(exitpool_dial_attempts_total)"), 2);
  EXPECT_EQ(value_of(text, R"(exitpool_dial_failures_total{error="dns_error"})"), 2);
  EXPECT_EQ(value_of(text, R"(exitpool_active_tunnels)"), 2);
}

TEST(Prometheus, HistogramBucketsAreCumulativeAndInfEqualsCount) {
  fixture f;
  const double samples[] = {0.0005, 0.001, 0.004, 0.3, 0.3, 3, 11, 60};
  for (std::size_t i = 0; i < std::size(samples); ++i) {
    f.reg.shard(i % 3).on_dial(pool::failure::none, samples[i]);
  }
  const std::string text = render_prometheus(f.reg, *f.snap, t0);
  double prev = 0;
  for (auto le : latency_bucket_labels) {
    double v = value_of(text, "exitpool_dial_duration_seconds_bucket{le=\"" + std::string(le) + "\"}");
    ASSERT_GE(v, prev) << le;
    prev = v;
  }
  EXPECT_EQ(value_of(text, R"(exitpool_dial_duration_seconds_bucket{le="0.001"})"), 2);
  EXPECT_EQ(value_of(text, R"(exitpool_dial_duration_seconds_bucket{le="0.005"})"), 3);
  EXPECT_EQ(value_of(text, R"(exitpool_dial_duration_seconds_bucket{le="0.5"})"), 5);
  EXPECT_EQ(value_of(text, R"(exitpool_dial_duration_seconds_bucket{le="10"})"), 6);
  const double inf = value_of(text, R"(exitpool_dial_duration_seconds_bucket{le="+Inf"})");
  EXPECT_EQ(inf, 8);
  EXPECT_EQ(value_of(text, "exitpool_dial_duration_seconds_count"), inf);
  EXPECT_NEAR(value_of(text, "exitpool_dial_duration_seconds_sum"), 0.0005 + 0.001 + 0.004 + 0.6 + 3 + 11 + 60, 1e-6);
}

TEST(Prometheus, DnsLookupsHitsFailuresAndLatency) {
  fixture f;
  using net::dns::source;
  using net::dns::status;
  f.reg.shard(0).on_dns_lookup(source::query, status::ok, 0.02);
  f.reg.shard(1).on_dns_lookup(source::cache, status::ok, 0.00001);
  f.reg.shard(1).on_dns_lookup(source::cache, status::not_found, 0.00001);
  f.reg.shard(2).on_dns_lookup(source::coalesced, status::timeout, 5);
  const std::string text = render_prometheus(f.reg, *f.snap, t0);
  EXPECT_EQ(value_of(text, R"(exitpool_dns_lookups_total{source="query"})"), 1);
  EXPECT_EQ(value_of(text, R"(exitpool_dns_lookups_total{source="cache"})"), 2);
  EXPECT_EQ(value_of(text, R"(exitpool_dns_lookups_total{source="coalesced"})"), 1);
  EXPECT_EQ(value_of(text, "exitpool_dns_cache_hits_total"), 2);
  EXPECT_EQ(value_of(text, R"(exitpool_dns_failures_total{kind="not_found"})"), 1);
  EXPECT_EQ(value_of(text, R"(exitpool_dns_failures_total{kind="timeout"})"), 1);
  EXPECT_EQ(value_of(text, R"(exitpool_dns_failures_total{kind="server_failure"})"), 0);
  EXPECT_EQ(text.find(R"(exitpool_dns_failures_total{kind="ok"})"), std::string::npos);
  EXPECT_EQ(value_of(text, R"(exitpool_dns_lookup_duration_seconds_bucket{le="0.001"})"), 2);
  EXPECT_EQ(value_of(text, R"(exitpool_dns_lookup_duration_seconds_bucket{le="0.025"})"), 3);
  EXPECT_EQ(value_of(text, "exitpool_dns_lookup_duration_seconds_count"), 4);
}

TEST(Prometheus, PerExitSeriesAndStates) {
  fixture f;
  const std::string text = render_prometheus(f.reg, *f.snap, t0);
  EXPECT_EQ(value_of(text, R"(exitpool_exit_up{exit="plain"})"), 1);
  EXPECT_EQ(value_of(text, R"(exitpool_exit_up{exit="down"})"), 0);
  EXPECT_EQ(value_of(text, R"(exitpool_exits{state="healthy"})"), 2);
  EXPECT_EQ(value_of(text, R"(exitpool_exits{state="ejected"})"), 1);
  EXPECT_EQ(value_of(text, R"(exitpool_exits{state="probing"})"), 0);
  EXPECT_EQ(value_of(text, R"(exitpool_exit_dial_successes_total{exit="plain"})"), 1);
  EXPECT_EQ(value_of(text, R"(exitpool_exit_dial_failures_total{exit="down"})"), 1);
  EXPECT_EQ(value_of(text, R"(exitpool_exit_inflight{exit="plain"})"), 0);
  EXPECT_NEAR(value_of(text, R"(exitpool_exit_ewma_dial_latency_seconds{exit="plain"})"), 0.0025, 1e-9);
  // No sample yet: no series rather than a made-up value.
  EXPECT_EQ(text.find(R"(exitpool_exit_ewma_dial_latency_seconds{exit="down"})"), std::string::npos);
  // After the cool-down the exit is usable again.
  const std::string later = render_prometheus(f.reg, *f.snap, t0 + 1h);
  EXPECT_EQ(value_of(later, R"(exitpool_exit_up{exit="down"})"), 1);
  EXPECT_EQ(value_of(later, R"(exitpool_exits{state="probing"})"), 1);
  EXPECT_EQ(value_of(later, R"(exitpool_exits{state="ejected"})"), 0);
}

TEST(Prometheus, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(escape_label_value("line\nbreak"), "line\\nbreak");
  EXPECT_EQ(escape_label_value("plain-id_1.2:3"), "plain-id_1.2:3");
  fixture f;
  const std::string text = render_prometheus(f.reg, *f.snap, t0);
  EXPECT_NE(text.find(R"(exitpool_exit_up{exit="we\"ird\\id\nx"} 1)"), std::string::npos) << text;
}

TEST(Prometheus, Bans) {
  fixture f;
  f.reg.shard(0).on_ban();
  f.reg.shard(2).on_ban();
  EXPECT_EQ(render_prometheus(f.reg, *f.snap, t0).find("exitpool_active_bans"), std::string::npos);
  pool::local_state bans;
  bans.ban(*f.snap->exits()[0], "example.com", t0 + 30s);
  bans.ban(*f.snap->exits()[1], "example.com", t0 + 30s);
  const std::string text = render_prometheus(f.reg, *f.snap, t0, &bans);
  EXPECT_EQ(value_of(text, "exitpool_bans_total"), 2);
  EXPECT_EQ(value_of(text, "exitpool_active_bans"), 2);
  EXPECT_EQ(value_of(render_prometheus(f.reg, *f.snap, t0 + 1h, &bans), "exitpool_active_bans"), 0);
}

TEST(Prometheus, PoolSources) {
  fixture f;
  EXPECT_EQ(render_prometheus(f.reg, *f.snap, t0).find("exitpool_pool_source"), std::string::npos);
  pool::source_status a;
  a.name = "pool.txt";
  a.exits = 3;
  a.fetches_changed = 1;
  a.last_success_age_s = 5;
  pool::source_status b;
  b.name = "http://127.0.0.1:9/list?key={key}";
  b.url = true;
  b.ok = false;
  b.exits = 7;
  b.fetches_changed = 2;
  b.fetches_unchanged = 4;
  b.fetches_failed = 3;
  const std::vector<pool::source_status> sources = {a, b};
  const std::string text = render_prometheus(f.reg, *f.snap, t0, nullptr, sources);
  EXPECT_EQ(value_of(text, R"(exitpool_pool_source_exits{source="pool.txt"})"), 3);
  EXPECT_EQ(value_of(text, R"(exitpool_pool_source_up{source="pool.txt"})"), 1);
  EXPECT_EQ(value_of(text, R"(exitpool_pool_source_up{source="http://127.0.0.1:9/list?key={key}"})"), 0);
  EXPECT_EQ(
      value_of(text,
               R"(exitpool_pool_source_fetches_total{source="http://127.0.0.1:9/list?key={key}",result="failed"})"),
      3);
  EXPECT_EQ(value_of(text, R"(exitpool_pool_source_last_success_age_seconds{source="pool.txt"})"), 5);
  EXPECT_EQ(text.find(R"(exitpool_pool_source_last_success_age_seconds{source="http)"), std::string::npos);
}

TEST(Prometheus, EmptyRegistryAndPool) {
  metrics_registry reg;
  auto snap = pool::snapshot::build({});
  const std::string text = render_prometheus(reg, *snap, t0);
  EXPECT_EQ(value_of(text, R"(exitpool_exits{state="healthy"})"), 0);
  EXPECT_EQ(value_of(text, R"(exitpool_dial_duration_seconds_count)"), 0);
}

}  // namespace
}  // namespace exitpool::admin
