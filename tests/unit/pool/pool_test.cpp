#include "pool/pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace exitpool::pool {
namespace {

using namespace std::chrono_literals;

// Injected time: an arbitrary steady_clock instant, far from the epoch.
const time_point t0 = time_point{} + 1000h;

proto::exit_spec spec(std::string id, std::string country = "", std::string city = "", std::string type = "",
                      double weight = 1.0) {
  proto::exit_spec s;
  s.scheme = proto::exit_scheme::http;
  s.host = "10.0.0.1";
  s.port = 8080;
  s.id = std::move(id);
  s.country = std::move(country);
  s.city = std::move(city);
  s.type = std::move(type);
  s.weight = weight;
  return s;
}

outcome ok(std::chrono::microseconds latency = 1000us) {
  return {true, latency};
}
outcome fail() {
  return {false, 0us};
}

std::vector<std::string> ids(const snapshot& s, std::span<const std::uint32_t> idx) {
  std::vector<std::string> out;
  for (auto i : idx) {
    out.push_back(s.exits()[i]->id());
  }
  return out;
}

// ---- exit health --------------------------------------------------------------------------------

TEST(Exit, HoldDownUntilEjectsWithoutAFailureAndKeepsTheLaterEnd) {
  exit e(spec("a"), 0);
  e.hold_down_until(t0 + 10s);
  EXPECT_FALSE(e.usable(t0 + 5s));
  EXPECT_EQ(e.failures(), 0u);
  e.hold_down_until(t0 + 3s);  // shorter: kept at 10 s
  EXPECT_FALSE(e.usable(t0 + 9s));
  EXPECT_EQ(e.state(t0 + 10s), exit_state::probing);
}

TEST(Exit, StartsUsableWithoutLatencySample) {
  exit e(spec("a"), 0);
  EXPECT_TRUE(e.usable(t0));
  EXPECT_LT(e.ewma_latency_us(), 0);
  EXPECT_EQ(e.inflight(), 0);
  EXPECT_EQ(e.successes(), 0u);
  EXPECT_EQ(e.failures(), 0u);
}

TEST(Exit, EwmaLatency) {
  exit e(spec("a"), 0);
  health_config cfg;
  e.report(ok(1000us), t0, cfg);
  EXPECT_DOUBLE_EQ(e.ewma_latency_us(), 1000.0);  // first sample taken as is
  e.report(ok(2000us), t0, cfg);
  EXPECT_NEAR(e.ewma_latency_us(), 1200.0, 0.01);  // 0.8 * 1000 + 0.2 * 2000
  e.report(ok(200us), t0, cfg);
  EXPECT_NEAR(e.ewma_latency_us(), 1000.0, 0.01);  // 0.8 * 1200 + 0.2 * 200
  EXPECT_EQ(e.successes(), 3u);
}

TEST(Exit, FailuresDoNotChangeLatency) {
  exit e(spec("a"), 0);
  health_config cfg;
  e.report(ok(500us), t0, cfg);
  e.report(fail(), t0, cfg);
  EXPECT_DOUBLE_EQ(e.ewma_latency_us(), 500.0);
}

TEST(Exit, EjectedAfterConsecutiveFailures) {
  exit e(spec("a"), 0);
  health_config cfg;  // 3 failures, 10 s base
  e.report(fail(), t0, cfg);
  e.report(fail(), t0, cfg);
  EXPECT_TRUE(e.usable(t0));
  EXPECT_EQ(e.consecutive_failures(), 2);
  e.report(fail(), t0, cfg);
  EXPECT_FALSE(e.usable(t0));
  EXPECT_FALSE(e.usable(t0 + 9999ms));
  EXPECT_TRUE(e.usable(t0 + 10s));
  EXPECT_EQ(e.down_until(), t0 + 10s);
  EXPECT_EQ(e.consecutive_failures(), 0);
  EXPECT_EQ(e.failures(), 3u);
}

TEST(Exit, SuccessBreaksTheStreak) {
  exit e(spec("a"), 0);
  health_config cfg;
  for (int i = 0; i < 10; ++i) {
    e.report(fail(), t0, cfg);
    e.report(fail(), t0, cfg);
    e.report(ok(), t0, cfg);
  }
  EXPECT_TRUE(e.usable(t0));
  EXPECT_EQ(e.failures(), 20u);
}

TEST(Exit, CooldownDoublesAndIsCapped) {
  exit e(spec("a"), 0);
  health_config cfg{.failures_to_eject = 2, .base_cooldown = 10s, .max_cooldown = 100s};
  const std::chrono::seconds expected[] = {10s, 20s, 40s, 80s, 100s, 100s, 100s};
  time_point now = t0;
  for (auto cooldown : expected) {
    e.report(fail(), now, cfg);
    e.report(fail(), now, cfg);
    EXPECT_EQ(e.down_until(), now + cooldown);
    now = e.down_until();  // the exit is retried when it comes back, and fails again
  }
}

TEST(Exit, CooldownCapSurvivesManyEjections) {
  exit e(spec("a"), 0);
  health_config cfg{.failures_to_eject = 1, .base_cooldown = 1s, .max_cooldown = 300s};
  for (int i = 0; i < 200; ++i) {
    e.report(fail(), t0, cfg);
  }
  EXPECT_EQ(e.down_until(), t0 + 300s);
}

TEST(Exit, SuccessRecovers) {
  exit e(spec("a"), 0);
  health_config cfg{.failures_to_eject = 1, .base_cooldown = 10s, .max_cooldown = 300s};
  e.report(fail(), t0, cfg);
  e.report(fail(), t0, cfg);
  EXPECT_EQ(e.down_until(), t0 + 20s);
  // Picked anyway (panic fallback) and it worked: usable again, back to the base cool-down.
  e.report(ok(), t0 + 1s, cfg);
  EXPECT_TRUE(e.usable(t0 + 1s));
  e.report(fail(), t0 + 2s, cfg);
  EXPECT_EQ(e.down_until(), t0 + 12s);
}

TEST(Lease, CountsInflight) {
  exit e(spec("a"), 0);
  {
    lease a(e);
    EXPECT_EQ(e.inflight(), 1);
    lease b(e);
    EXPECT_EQ(e.inflight(), 2);
    lease c(std::move(b));
    EXPECT_EQ(e.inflight(), 2);
    EXPECT_EQ(b.get(), nullptr);
    EXPECT_EQ(c.get(), &e);
    a = std::move(c);  // releases a's own count
    EXPECT_EQ(e.inflight(), 1);
    a.release();
    EXPECT_EQ(e.inflight(), 0);
    a.release();
    EXPECT_EQ(e.inflight(), 0);
  }
  EXPECT_EQ(e.inflight(), 0);
}

// ---- filter -----------------------------------------------------------------------------------

TEST(Filter, MatchesCaseInsensitively) {
  exit e(spec("a", "US", "New York", "Residential"), 0);
  EXPECT_TRUE(filter{}.matches(e));
  EXPECT_TRUE((filter{"us", "", ""}.matches(e)));
  EXPECT_TRUE((filter{"us", "new york", "residential"}.matches(e)));
  EXPECT_TRUE((filter{"US", "NEW YORK", ""}.matches(e)));
  EXPECT_FALSE((filter{"de", "", ""}.matches(e)));
  EXPECT_FALSE((filter{"us", "boston", ""}.matches(e)));
  EXPECT_FALSE((filter{"us", "", "datacenter"}.matches(e)));
  EXPECT_FALSE((filter{"u", "", ""}.matches(e)));
}

TEST(Filter, UntaggedExitMatchesOnlyEmptyFields) {
  exit e(spec("a"), 0);
  EXPECT_TRUE(filter{}.matches(e));
  EXPECT_FALSE((filter{"us", "", ""}.matches(e)));
}

TEST(Filter, Describe) {
  EXPECT_EQ(filter{}.describe(), "any");
  EXPECT_EQ((filter{"us", "", ""}.describe()), "country=us");
  EXPECT_EQ((filter{"us", "", "residential"}.describe()), "country=us type=residential");
  EXPECT_EQ((filter{"", "paris", "isp"}.describe()), "city=paris type=isp");
}

// ---- snapshot ---------------------------------------------------------------------------------

std::vector<proto::exit_spec> mixed_specs() {
  return {
      spec("us-ny-res", "us", "nyc", "residential"),  spec("us-ny-dc", "us", "nyc", "datacenter"),
      spec("us-la-res", "us", "la", "residential"),   spec("de-be-res", "DE", "Berlin", "Residential"),
      spec("de-mu-dc", "de", "munich", "datacenter"), spec("untagged"),
  };
}

TEST(Snapshot, BuildsAndFinds) {
  auto s = snapshot::build(mixed_specs());
  ASSERT_EQ(s->size(), 6u);
  for (std::size_t i = 0; i < s->size(); ++i) {
    EXPECT_EQ(s->exits()[i]->index(), i);
    EXPECT_EQ(s->find(s->exits()[i]->id()), s->exits()[i].get());
  }
  EXPECT_EQ(s->find("nope"), nullptr);
}

TEST(Snapshot, Candidates) {
  auto s = snapshot::build(mixed_specs());
  EXPECT_EQ(s->candidates(filter{}).size(), 6u);
  EXPECT_EQ(ids(*s, s->candidates(filter{"us", "", ""})),
            (std::vector<std::string>{"us-ny-res", "us-ny-dc", "us-la-res"}));
  // Indexed lower-case; an upper-case filter value still finds them.
  EXPECT_EQ(ids(*s, s->candidates(filter{"de", "", ""})), (std::vector<std::string>{"de-be-res", "de-mu-dc"}));
  EXPECT_EQ(ids(*s, s->candidates(filter{"DE", "", ""})), (std::vector<std::string>{"de-be-res", "de-mu-dc"}));
  EXPECT_EQ(ids(*s, s->candidates(filter{"", "berlin", ""})), (std::vector<std::string>{"de-be-res"}));
  // The smallest list among the set fields: city la (1) beats country us (3).
  EXPECT_EQ(ids(*s, s->candidates(filter{"us", "la", ""})), (std::vector<std::string>{"us-la-res"}));
  // Candidates may still not match: callers check filter::matches.
  EXPECT_EQ(ids(*s, s->candidates(filter{"de", "la", ""})), (std::vector<std::string>{"us-la-res"}));
  // A value no exit has: nothing can match.
  EXPECT_TRUE(s->candidates(filter{"fr", "", ""}).empty());
  EXPECT_TRUE(s->candidates(filter{"us", "", "mobile"}).empty());
}

TEST(Snapshot, DuplicateIdFirstWins) {
  auto specs = mixed_specs();
  auto dup = spec("us-ny-res", "fr");
  specs.push_back(dup);
  auto s = snapshot::build(specs);
  EXPECT_EQ(s->size(), 6u);
  EXPECT_EQ(s->find("us-ny-res")->spec().country, "us");
  EXPECT_TRUE(s->candidates(filter{"fr", "", ""}).empty());
}

// A big pool is built by several threads; the snapshot is the same as one thread's:
// order, indexes, tag lists, lookups, carry-over and the single-tier flag.
TEST(Snapshot, ThreadedBuildMatchesSerial) {
  constexpr std::size_t n = 120000;
  auto big = [](int changed_every) {
    std::vector<proto::exit_spec> specs;
    specs.reserve(n + 1);
    const char* countries[] = {"us", "DE", "fr"};
    for (std::size_t i = 0; i < n; ++i) {
      auto s = spec("e" + std::to_string(i), countries[i % 3], i % 7 == 0 ? "nyc" : "", i % 2 ? "isp" : "dc");
      if (changed_every > 0 && i % changed_every == 0) {
        s.weight = 2;
      }
      specs.push_back(std::move(s));
    }
    specs.push_back(spec("e5", "jp"));  // a duplicate id: dropped, the first wins
    return specs;
  };
  auto serial = snapshot::build(big(0), nullptr, {}, 1);
  ASSERT_EQ(serial->size(), n);
  for (unsigned threads : {2u, 3u}) {
    SCOPED_TRACE(threads);
    auto s = snapshot::build(big(0), nullptr, {}, threads);
    ASSERT_EQ(s->size(), n);
    for (std::size_t i = 0; i < n; i += 997) {
      EXPECT_EQ(s->exits()[i]->id(), serial->exits()[i]->id());
      EXPECT_EQ(s->exits()[i]->index(), i);
      EXPECT_EQ(s->find(s->exits()[i]->id()), s->exits()[i].get());
    }
    EXPECT_EQ(s->find("e5")->spec().country, "fr");
    EXPECT_EQ(s->find("nope"), nullptr);
    EXPECT_TRUE(s->single_tier());
    for (const filter& f : {filter{"us", "", ""}, filter{"de", "", ""}, filter{"", "nyc", ""}, filter{"", "", "isp"}}) {
      const auto a = s->candidates(f);
      const auto b = serial->candidates(f);
      ASSERT_EQ(a.size(), b.size()) << f.describe();
      EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << f.describe();
      EXPECT_TRUE(std::is_sorted(a.begin(), a.end())) << f.describe();
    }
    EXPECT_TRUE(s->candidates(filter{"jp", "", ""}).empty());

    // Reload against it with every 10th exit changed: the other 90% carry over.
    auto next = snapshot::build(big(10), s.get(), {}, threads);
    EXPECT_EQ(next->carried_over(), n - n / 10);
    EXPECT_EQ(next->find("e1"), s->find("e1"));
    EXPECT_NE(next->find("e10"), s->find("e10"));
    EXPECT_EQ(next->find("e10")->spec().weight, 2);
  }
  auto tiered = big(0);
  tiered[n - 1].tags.emplace_back("tier", "1");
  EXPECT_FALSE(snapshot::build(std::move(tiered), nullptr, {}, 2)->single_tier());
}

TEST(Snapshot, CarriesOverUnchangedExits) {
  health_config cfg;
  auto first = snapshot::build(mixed_specs());
  exit* kept = first->exits()[1].get();
  exit* changed = first->exits()[2].get();
  kept->report(ok(700us), t0, cfg);
  kept->report(fail(), t0, cfg);
  lease l(*kept);

  auto specs = mixed_specs();
  specs.erase(specs.begin());    // us-ny-res removed
  specs[1].weight = 2.0;         // us-la-res changed
  specs.push_back(spec("new"));  // added
  specs[0].line = 42;            // a line number alone is no change
  auto second = snapshot::build(specs, first.get());

  ASSERT_EQ(second->size(), 6u);
  EXPECT_EQ(second->find("us-ny-res"), nullptr);
  EXPECT_EQ(second->find("us-ny-dc"), kept);  // same object...
  EXPECT_EQ(kept->successes(), 1u);           // ...same stats
  EXPECT_EQ(kept->failures(), 1u);
  EXPECT_EQ(kept->inflight(), 1);
  EXPECT_DOUBLE_EQ(kept->ewma_latency_us(), 700.0);
  EXPECT_NE(second->find("us-la-res"), changed);
  EXPECT_EQ(second->find("us-la-res")->successes(), 0u);
  EXPECT_DOUBLE_EQ(second->find("us-la-res")->spec().weight, 2.0);
  // Indexes describe the new snapshot.
  EXPECT_EQ(ids(*second, second->candidates(filter{"us", "", ""})),
            (std::vector<std::string>{"us-ny-dc", "us-la-res"}));
  EXPECT_EQ(ids(*second, second->candidates(filter{"", "nyc", ""})), (std::vector<std::string>{"us-ny-dc"}));
}

TEST(Snapshot, AnySpecFieldChangeMakesANewExit) {
  auto base = spec("x", "us", "nyc", "isp");
  base.user = "u";
  base.pass = "p";
  base.tags = {{"asn", "1"}};
  std::vector<void (*)(proto::exit_spec&)> changes = {
      [](proto::exit_spec& s) { s.scheme = proto::exit_scheme::socks5; },
      [](proto::exit_spec& s) { s.host = "10.0.0.2"; },
      [](proto::exit_spec& s) { s.port = 1; },
      [](proto::exit_spec& s) { s.user = "v"; },
      [](proto::exit_spec& s) { s.pass = "q"; },
      [](proto::exit_spec& s) { s.tags[0].second = "2"; },
      [](proto::exit_spec& s) { s.weight = 3; },
      [](proto::exit_spec& s) { s.tls_verify = false; },
      [](proto::exit_spec& s) { s.country = "de"; },
      [](proto::exit_spec& s) { s.city = "la"; },
      [](proto::exit_spec& s) { s.type = "dc"; },
  };
  auto first = snapshot::build({base});
  EXPECT_EQ(snapshot::build({base}, first.get())->find("x"), first->find("x"));
  for (std::size_t i = 0; i < changes.size(); ++i) {
    auto changed = base;
    changes[i](changed);
    EXPECT_NE(snapshot::build({changed}, first.get())->find("x"), first->find("x")) << "change " << i;
  }
}

TEST(PoolHolder, SwapsSnapshots) {
  pool_holder holder(snapshot::build(mixed_specs()));
  auto before = holder.load();
  holder.store(snapshot::build({spec("only")}, before.get()));
  EXPECT_EQ(before->size(), 6u);  // readers keep the snapshot they loaded
  EXPECT_EQ(holder.load()->size(), 1u);
}

// ---- states, tiers and limits ------------------------------------------------------------------

TEST(Exit, StatesHealthyEjectedProbing) {
  exit e(spec("a"), 0);
  const health_config cfg{.failures_to_eject = 1, .base_cooldown = 10s};
  EXPECT_EQ(e.state(t0), exit_state::healthy);
  e.report(fail(), t0, cfg);
  EXPECT_EQ(e.state(t0 + 1s), exit_state::ejected);
  EXPECT_EQ(e.state(t0 + 10s), exit_state::probing);
  EXPECT_TRUE(e.usable(t0 + 10s));  // usable(): not cooling down (probing counts)
  EXPECT_STREQ(state_name(e.state(t0 + 10s)), "probing");
  e.report(ok(), t0 + 10s, cfg);
  EXPECT_EQ(e.state(t0 + 10s), exit_state::healthy);
}

TEST(Exit, ProbeSlotIsExclusive) {
  exit e(spec("a"), 0);
  EXPECT_TRUE(e.try_claim_probe(t0, 30s));
  EXPECT_FALSE(e.try_claim_probe(t0 + 29s, 30s));
  EXPECT_EQ(e.probe_busy_until(t0, 30s), t0 + 30s);
  EXPECT_TRUE(e.try_claim_probe(t0 + 30s, 30s));  // lapsed
  e.release_probe();
  EXPECT_EQ(e.probe_busy_until(t0 + 30s, 30s), std::nullopt);
}

TEST(Snapshot, AppliesLimitsToNewAndCarriedOverExits) {
  auto s1 = snapshot::build({spec("a")}, nullptr, {.per_exit_rate = 2, .burst = 4, .per_exit_concurrency = 3});
  const exit* a = s1->find("a");
  EXPECT_DOUBLE_EQ(a->limiter().rate(), 2.0);
  EXPECT_DOUBLE_EQ(a->limiter().burst(), 4.0);
  EXPECT_EQ(a->concurrency_cap(), 3);
  EXPECT_EQ(a->tier(), 0);
  // Reload with limits off: same exit object, limits off.
  auto s2 = snapshot::build({spec("a")}, s1.get());
  EXPECT_EQ(s2->find("a"), a);
  EXPECT_FALSE(a->limiter().limited());
  EXPECT_EQ(a->concurrency_cap(), 0);
}

TEST(Snapshot, TierTagChangeIsANewExit) {
  auto s1 = snapshot::build({spec("a")});
  auto tagged = spec("a");
  tagged.tags.emplace_back("tier", "2");
  auto s2 = snapshot::build({tagged}, s1.get());
  EXPECT_NE(s2->find("a"), s1->find("a"));
  EXPECT_EQ(s2->find("a")->tier(), 2);
}

}  // namespace
}  // namespace exitpool::pool
