#include "pool/selector.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "pool/ban.hpp"
#include "pool/rate_limit.hpp"

namespace exitpool::pool {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + 1000h;
const health_config eject_once{.failures_to_eject = 1, .base_cooldown = 10s, .max_cooldown = 300s};

proto::exit_spec spec(std::string id, std::string country = "", std::string city = "", std::string type = "",
                      double weight = 1.0) {
  proto::exit_spec s;
  s.scheme = proto::exit_scheme::socks5;
  s.host = "10.0.0.1";
  s.port = 1080;
  s.id = std::move(id);
  s.country = std::move(country);
  s.city = std::move(city);
  s.type = std::move(type);
  s.weight = weight;
  return s;
}

std::shared_ptr<const snapshot> numbered(int n, double weight = 1.0) {
  std::vector<proto::exit_spec> specs;
  for (int i = 0; i < n; ++i) {
    specs.push_back(spec("e" + std::to_string(i), "", "", "", weight));
  }
  return snapshot::build(std::move(specs));
}

std::shared_ptr<const snapshot> mixed() {
  return snapshot::build({
      spec("us-nyc-res-1", "us", "nyc", "residential"),
      spec("us-nyc-res-2", "us", "nyc", "residential"),
      spec("us-nyc-dc", "us", "nyc", "datacenter"),
      spec("us-la-res", "us", "la", "residential"),
      spec("us-la-dc", "us", "la", "datacenter"),
      spec("de-ber-res", "de", "berlin", "residential"),
      spec("de-ber-dc", "de", "berlin", "datacenter"),
      spec("untagged"),
  });
}

void eject(exit& e, time_point now, const health_config& cfg = eject_once) {
  e.report({false, 0us}, now, cfg);
}

// Picks `n` times and counts the chosen ids; every pick must succeed.
std::map<std::string, int> tally(selector& sel, const snapshot& s, const pick_request& r, int n, time_point now = t0) {
  std::map<std::string, int> counts;
  for (int i = 0; i < n; ++i) {
    auto res = sel.pick(s, r, now);
    EXPECT_EQ(res.error, pick_error::none);
    if (res.chosen == nullptr) {
      ADD_FAILURE() << "no exit chosen";
      break;
    }
    ++counts[res.chosen->id()];
  }
  return counts;
}

const policy all_policies[] = {policy::round_robin, policy::random, policy::least_inflight, policy::fastest};

TEST(Policy, ParseAndName) {
  for (policy p : all_policies) {
    EXPECT_EQ(parse_policy(policy_name(p)), p);
  }
  EXPECT_EQ(parse_policy("round-robin"), policy::round_robin);
  EXPECT_EQ(parse_policy("least-inflight"), policy::least_inflight);
  EXPECT_EQ(parse_policy("sticky"), std::nullopt);
  EXPECT_EQ(parse_policy(""), std::nullopt);
}

TEST(RoundRobin, SpreadsEvenly) {
  auto s = numbered(7);
  for (std::uint64_t seed : {0ull, 1ull, 123456789ull}) {
    selector sel(policy::round_robin, seed);
    auto counts = tally(sel, *s, {}, 7 * 100);
    ASSERT_EQ(counts.size(), 7u);
    for (const auto& [id, n] : counts) {
      EXPECT_EQ(n, 100) << id;
    }
  }
}

TEST(RoundRobin, VisitsEveryExitOncePerCycle) {
  auto s = numbered(5);
  selector sel(policy::round_robin, 3);
  std::vector<std::string> order;
  for (int i = 0; i < 10; ++i) {
    order.push_back(sel.pick(*s, {}, t0).chosen->id());
  }
  EXPECT_EQ(std::set<std::string>(order.begin(), order.begin() + 5).size(), 5u);
  EXPECT_TRUE(std::equal(order.begin(), order.begin() + 5, order.begin() + 5));
}

TEST(RoundRobin, SpreadsEvenlyOverFilteredExits) {
  auto s = mixed();
  selector sel(policy::round_robin, 0);
  pick_request r;
  r.f = {"us", "", "residential"};
  auto counts = tally(sel, *s, r, 300);
  EXPECT_EQ(counts, (std::map<std::string, int>{{"us-nyc-res-1", 100}, {"us-nyc-res-2", 100}, {"us-la-res", 100}}));
}

struct filter_case {
  filter f;
  std::set<std::string> expected;  // exactly the exits that may be chosen
};

TEST(Selector, FiltersSelectOnlyMatchingExits) {
  auto s = mixed();
  const std::vector<filter_case> cases = {
      {{},
       {"us-nyc-res-1", "us-nyc-res-2", "us-nyc-dc", "us-la-res", "us-la-dc", "de-ber-res", "de-ber-dc", "untagged"}},
      {{"us", "", ""}, {"us-nyc-res-1", "us-nyc-res-2", "us-nyc-dc", "us-la-res", "us-la-dc"}},
      {{"US", "", ""}, {"us-nyc-res-1", "us-nyc-res-2", "us-nyc-dc", "us-la-res", "us-la-dc"}},
      {{"de", "", ""}, {"de-ber-res", "de-ber-dc"}},
      {{"", "nyc", ""}, {"us-nyc-res-1", "us-nyc-res-2", "us-nyc-dc"}},
      {{"", "", "datacenter"}, {"us-nyc-dc", "us-la-dc", "de-ber-dc"}},
      {{"", "", "Datacenter"}, {"us-nyc-dc", "us-la-dc", "de-ber-dc"}},
      {{"us", "la", ""}, {"us-la-res", "us-la-dc"}},
      {{"us", "", "datacenter"}, {"us-nyc-dc", "us-la-dc"}},
      {{"us", "nyc", "residential"}, {"us-nyc-res-1", "us-nyc-res-2"}},
      {{"de", "berlin", "datacenter"}, {"de-ber-dc"}},
  };
  for (policy p : all_policies) {
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(policy_name(p)) + " " + c.f.describe());
      selector sel(p, 42);
      pick_request r;
      r.f = c.f;
      auto first = sel.pick(*s, r, t0);
      EXPECT_EQ(first.matching, c.expected.size());
      auto counts = tally(sel, *s, r, 400);
      std::set<std::string> seen;
      for (const auto& [id, n] : counts) {
        seen.insert(id);
      }
      if (p == policy::round_robin || p == policy::random) {
        EXPECT_EQ(seen, c.expected);  // every matching exit gets its turn
      } else {
        EXPECT_TRUE(std::includes(c.expected.begin(), c.expected.end(), seen.begin(), seen.end()));
      }
    }
  }
}

TEST(Selector, NoMatch) {
  auto s = mixed();
  const filter no_such[] = {{"fr", "", ""}, {"de", "nyc", ""}, {"us", "nyc", "mobile"}, {"de", "la", "datacenter"}};
  for (policy p : all_policies) {
    selector sel(p, 1);
    for (const auto& f : no_such) {
      pick_request r;
      r.f = f;
      auto res = sel.pick(*s, r, t0);
      EXPECT_EQ(res.error, pick_error::no_match) << f.describe();
      EXPECT_EQ(res.chosen, nullptr);
      EXPECT_EQ(res.matching, 0u);
      r.sticky_key = "user-session";
      EXPECT_EQ(sel.pick(*s, r, t0).error, pick_error::no_match);
    }
  }
  auto empty = snapshot::build({});
  selector sel(policy::round_robin, 1);
  EXPECT_EQ(sel.pick(*empty, {}, t0).error, pick_error::no_match);
}

TEST(Selector, ExcludeIsHonoured) {
  auto s = numbered(3);
  const exit* ex[] = {s->exits()[0].get(), s->exits()[2].get()};
  for (policy p : all_policies) {
    selector sel(p, 9);
    pick_request r;
    r.exclude = ex;
    auto counts = tally(sel, *s, r, 50);
    EXPECT_EQ(counts, (std::map<std::string, int>{{"e1", 50}})) << policy_name(p);
  }
}

TEST(Selector, RetriesExhaustTheMatches) {
  auto s = mixed();
  for (policy p : all_policies) {
    for (bool sticky : {false, true}) {
      SCOPED_TRACE(std::string(policy_name(p)) + (sticky ? " sticky" : ""));
      selector sel(p, 5);
      std::vector<const exit*> tried;
      pick_request r;
      r.f = {"us", "", ""};
      r.sticky_key = sticky ? "u-s1" : "";
      for (;;) {
        r.exclude = tried;
        auto res = sel.pick(*s, r, t0);
        EXPECT_EQ(res.matching, 5u);
        if (res.error != pick_error::none) {
          EXPECT_EQ(res.error, pick_error::exhausted);
          EXPECT_EQ(res.chosen, nullptr);
          break;
        }
        ASSERT_NE(res.chosen, nullptr);
        EXPECT_EQ(std::find(tried.begin(), tried.end(), res.chosen), tried.end());
        EXPECT_EQ(res.chosen->spec().country, "us");
        tried.push_back(res.chosen);
        ASSERT_LE(tried.size(), 5u);
      }
      EXPECT_EQ(tried.size(), 5u);
    }
  }
}

TEST(Selector, SkipsExitsInCooldown) {
  auto s = numbered(4);
  eject(*s->exits()[1], t0);
  eject(*s->exits()[3], t0);
  for (policy p : all_policies) {
    selector sel(p, 11);
    auto counts = tally(sel, *s, {}, 200, t0 + 5s);
    EXPECT_EQ(counts.count("e1"), 0u) << policy_name(p);
    EXPECT_EQ(counts.count("e3"), 0u) << policy_name(p);
  }
  // Cool-down over: e1 and e3 are probing. Each is lent to one request (the probe);
  // once the probes succeed they are back in rotation.
  selector rr(policy::round_robin, 0);
  auto probes = tally(rr, *s, {}, 400, t0 + 10s);
  EXPECT_EQ(probes.at("e1"), 1);
  EXPECT_EQ(probes.at("e3"), 1);
  s->exits()[1]->report({true, 0us}, t0 + 10s, eject_once);
  s->exits()[3]->report({true, 0us}, t0 + 10s, eject_once);
  auto later = tally(rr, *s, {}, 400, t0 + 10s);
  EXPECT_EQ(later, (std::map<std::string, int>{{"e0", 100}, {"e1", 100}, {"e2", 100}, {"e3", 100}}));
}

TEST(Selector, PanicFallbackPicksSoonestBack) {
  auto s = numbered(4);
  // Staggered cool-downs: e2 comes back first.
  eject(*s->exits()[0], t0);
  eject(*s->exits()[1], t0 + 3s);
  eject(*s->exits()[2], t0 - 5s);
  eject(*s->exits()[3], t0 + 1s);
  for (policy p : all_policies) {
    for (bool sticky : {false, true}) {
      selector sel(p, 2);
      pick_request r;
      r.sticky_key = sticky ? "k" : "";
      auto res = sel.pick(*s, r, t0 + 4s);
      EXPECT_EQ(res.error, pick_error::none);
      ASSERT_NE(res.chosen, nullptr);
      EXPECT_EQ(res.chosen->id(), "e2") << policy_name(p) << sticky;
      // With the soonest excluded, the next soonest.
      const exit* ex[] = {res.chosen};
      r.exclude = ex;
      res = sel.pick(*s, r, t0 + 4s);
      ASSERT_NE(res.chosen, nullptr);
      EXPECT_EQ(res.chosen->id(), "e0");
    }
  }
}

TEST(Selector, PanicFallbackOnlyAmongMatches) {
  auto s = mixed();
  for (const auto& e : s->exits()) {
    if (e->spec().country == "de") {
      eject(*e, t0);
    }
  }
  selector sel(policy::random, 1);
  pick_request r;
  r.f = {"de", "", ""};
  auto res = sel.pick(*s, r, t0);
  ASSERT_NE(res.chosen, nullptr);
  EXPECT_EQ(res.chosen->spec().country, "de");
}

TEST(Random, RespectsWeights) {
  auto s = snapshot::build(
      {spec("w1", "", "", "", 1), spec("w2", "", "", "", 2), spec("w3", "", "", "", 3), spec("w4", "", "", "", 4)});
  selector sel(policy::random, 2024);
  const int n = 100000;
  auto counts = tally(sel, *s, {}, n);
  for (int w = 1; w <= 4; ++w) {
    const double share = static_cast<double>(counts["w" + std::to_string(w)]) / n;
    EXPECT_NEAR(share, w / 10.0, 0.01) << "w" << w;
  }
}

TEST(Random, DifferentSeedsDifferentSequences) {
  auto s = numbered(50);
  selector a(policy::random, 1);
  selector b(policy::random, 2);
  selector a2(policy::random, 1);
  int same = 0;
  for (int i = 0; i < 100; ++i) {
    auto x = a.pick(*s, {}, t0).chosen;
    same += x == b.pick(*s, {}, t0).chosen ? 1 : 0;
    EXPECT_EQ(x, a2.pick(*s, {}, t0).chosen);  // deterministic for a seed
  }
  EXPECT_LT(same, 20);
}

TEST(LeastInflight, PrefersIdleExit) {
  auto s = numbered(3);
  lease a(*s->exits()[0]);
  lease b(*s->exits()[2]);
  lease b2(*s->exits()[2]);
  selector sel(policy::least_inflight, 3);
  auto counts = tally(sel, *s, {}, 50);
  EXPECT_EQ(counts, (std::map<std::string, int>{{"e1", 50}}));
  // Leases taken as picks are made spread the load.
  std::vector<lease> held;
  for (int i = 0; i < 9; ++i) {
    held.emplace_back(*sel.pick(*s, {}, t0).chosen);
  }
  for (const auto& e : s->exits()) {
    EXPECT_EQ(e->inflight(), 4);
  }
}

TEST(LeastInflight, TiesAreRandom) {
  auto s = numbered(4);
  selector sel(policy::least_inflight, 8);
  auto counts = tally(sel, *s, {}, 4000);
  ASSERT_EQ(counts.size(), 4u);
  for (const auto& [id, n] : counts) {
    EXPECT_NEAR(n, 1000, 150) << id;
  }
}

TEST(LeastInflight, PowerOfTwoChoicesOnLargePools) {
  auto s = numbered(200);
  std::vector<lease> busy;
  for (int i = 0; i < 100; ++i) {  // even exits carry 3 leases each
    for (int k = 0; k < 3; ++k) {
      busy.emplace_back(*s->exits()[2 * i]);
    }
  }
  selector sel(policy::least_inflight, 77);
  int idle = 0;
  const int n = 4000;
  std::set<const exit*> seen;
  for (int i = 0; i < n; ++i) {
    auto* e = sel.pick(*s, {}, t0).chosen;
    idle += e->inflight() == 0 ? 1 : 0;
    seen.insert(e);
  }
  // Two samples, the less loaded wins: idle unless both were busy (~1/4).
  EXPECT_NEAR(static_cast<double>(idle) / n, 0.75, 0.04);
  EXPECT_GT(seen.size(), 150u);  // no herding onto one exit
}

TEST(Fastest, PrefersLowLatency) {
  auto s = numbered(3);
  health_config cfg;
  s->exits()[0]->report({true, 100ms}, t0, cfg);
  s->exits()[1]->report({true, 10ms}, t0, cfg);
  s->exits()[2]->report({true, 50ms}, t0, cfg);
  selector sel(policy::fastest, 4);
  const int n = 4000;
  auto counts = tally(sel, *s, {}, n);
  // 95% exploitation plus a third of the 5% exploration.
  EXPECT_NEAR(static_cast<double>(counts["e1"]) / n, 0.95 + 0.05 / 3, 0.02);
  EXPECT_GT(counts["e0"], 0);  // slow exits still get re-measured
  EXPECT_GT(counts["e2"], 0);
}

TEST(Fastest, UnmeasuredExitsFirst) {
  auto s = numbered(3);
  health_config cfg;
  s->exits()[0]->report({true, 1ms}, t0, cfg);
  selector sel(policy::fastest, 4);
  auto counts = tally(sel, *s, {}, 1000);
  EXPECT_LT(counts["e0"], 60);  // only by exploration
  EXPECT_GT(counts["e1"], 400);
  EXPECT_GT(counts["e2"], 400);
}

// ---- bans, rate limits, concurrency caps, probing ----------------------------------------------

exit& at(const snapshot& s, int i) {
  return *s.exits()[i];
}

TEST(SelectorCapacity, SkipsExitsBannedForTheHostOnly) {
  auto s = numbered(3);
  local_state st;
  st.ban(at(*s, 1), "x.com", t0 + 60s);
  for (policy p : all_policies) {
    selector sel(p, 3);
    pick_request r;
    r.host = "x.com";
    r.st = &st;
    auto counts = tally(sel, *s, r, 300);
    EXPECT_EQ(counts.count("e1"), 0u) << policy_name(p);
    r.host = "y.com";
    EXPECT_GT(tally(sel, *s, r, 300).count("e1"), 0u) << policy_name(p);
    // Ban over: back for x.com too.
    r.host = "x.com";
    EXPECT_GT(tally(sel, *s, r, 300, t0 + 60s).count("e1"), 0u) << policy_name(p);
  }
}

TEST(SelectorCapacity, AllBannedIsNoCapacityUntilTheFirstBanEnds) {
  auto s = numbered(2);
  local_state st;
  st.ban(at(*s, 0), "x.com", t0 + 60s);
  st.ban(at(*s, 1), "x.com", t0 + 30s);
  selector sel(policy::random, 1);
  pick_request r;
  r.host = "x.com";
  r.st = &st;
  auto res = sel.pick(*s, r, t0);
  EXPECT_EQ(res.chosen, nullptr);
  EXPECT_EQ(res.error, pick_error::no_capacity);
  EXPECT_EQ(res.retry_at, t0 + 30s);
  EXPECT_EQ(res.matching, 2u);
  EXPECT_EQ(res.banned, 2u);
  EXPECT_EQ(res.limited, 0u);
  // Banned exits are not a panic fallback; excluded ones still make "exhausted".
  const exit* ex[] = {&at(*s, 0), &at(*s, 1)};
  r.exclude = ex;
  EXPECT_EQ(sel.pick(*s, r, t0).error, pick_error::exhausted);
  r.f.country = "zz";
  EXPECT_EQ(sel.pick(*s, r, t0).error, pick_error::no_match);
}

TEST(SelectorCapacity, TokensAreTakenOnlyOnTheChosenExit) {
  auto s = snapshot::build({spec("a"), spec("b"), spec("c")}, nullptr, {.per_exit_rate = 1, .burst = 1});
  selector sel(policy::round_robin, 0);
  auto res = sel.pick(*s, {}, t0);
  ASSERT_NE(res.chosen, nullptr);
  EXPECT_EQ(res.chosen->id(), "a");
  EXPECT_FALSE(at(*s, 0).limiter().available(t0));
  EXPECT_TRUE(at(*s, 1).limiter().available(t0));  // looked at, not consumed
  EXPECT_TRUE(at(*s, 2).limiter().available(t0));
  // One token each per second: b, c, then nothing until a's token frees.
  EXPECT_EQ(sel.pick(*s, {}, t0 + 100ms).chosen->id(), "b");
  EXPECT_EQ(sel.pick(*s, {}, t0 + 200ms).chosen->id(), "c");
  res = sel.pick(*s, {}, t0 + 300ms);
  EXPECT_EQ(res.error, pick_error::no_capacity);
  EXPECT_EQ(res.retry_at, t0 + 1s);
  EXPECT_EQ(res.limited, 3u);
  EXPECT_EQ(sel.pick(*s, {}, t0 + 1s).chosen->id(), "a");
}

TEST(SelectorCapacity, RateOverThreeSecondsPerExit) {
  // --per-exit-rate 5 with 4 exits: 20 picks a second, 5 per exit, whatever the policy.
  for (policy p : all_policies) {
    auto s = snapshot::build({spec("a"), spec("b"), spec("c"), spec("d")}, nullptr, {.per_exit_rate = 5, .burst = 1});
    selector sel(p, 9);
    std::map<std::string, int> per_exit;
    int refused = 0;
    for (auto t = 0ms; t < 3s; t += 5ms) {
      auto res = sel.pick(*s, {}, t0 + t);
      if (res.chosen != nullptr) {
        ++per_exit[res.chosen->id()];
      } else {
        EXPECT_EQ(res.error, pick_error::no_capacity);
        EXPECT_GT(res.retry_at, t0 + t);
        ++refused;
      }
    }
    for (const auto& [id, n] : per_exit) {
      EXPECT_EQ(n, 15) << policy_name(p) << " " << id;
    }
    EXPECT_EQ(per_exit.size(), 4u);
    EXPECT_EQ(refused, 600 - 60);
  }
}

TEST(SelectorCapacity, PerExitHostRate) {
  auto s = numbered(2);
  local_state hl(limits_config{.burst = 1, .per_exit_host_rate = 1});
  selector sel(policy::round_robin, 0);
  pick_request r;
  r.host = "x.com";
  r.st = &hl;
  std::set<std::string> got;
  got.insert(sel.pick(*s, r, t0).chosen->id());
  got.insert(sel.pick(*s, r, t0).chosen->id());
  EXPECT_EQ(got, (std::set<std::string>{"e0", "e1"}));
  auto res = sel.pick(*s, r, t0 + 10ms);
  EXPECT_EQ(res.error, pick_error::no_capacity);
  EXPECT_EQ(res.retry_at, t0 + 1s);
  // Another host has its own buckets; no host, no per-host limit.
  r.host = "y.com";
  EXPECT_NE(sel.pick(*s, r, t0 + 10ms).chosen, nullptr);
  r.host = "";
  EXPECT_NE(sel.pick(*s, r, t0 + 10ms).chosen, nullptr);
}

TEST(SelectorCapacity, ConcurrencyCap) {
  auto s = snapshot::build({spec("a"), spec("b")}, nullptr, {.per_exit_concurrency = 1});
  selector sel(policy::round_robin, 0);
  lease la(at(*s, 0));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(sel.pick(*s, {}, t0).chosen->id(), "b");
  }
  lease lb = lease::try_acquire(at(*s, 1));
  ASSERT_TRUE(lb);
  EXPECT_FALSE(lease::try_acquire(at(*s, 1)));  // exact cap
  auto res = sel.pick(*s, {}, t0);
  EXPECT_EQ(res.error, pick_error::no_capacity);
  EXPECT_EQ(res.retry_at, t0 + capacity_poll);
  la.release();
  EXPECT_EQ(sel.pick(*s, {}, t0).chosen->id(), "a");
}

TEST(SelectorCapacity, StickyBannedFallsToTheNextRendezvousChoice) {
  auto s = numbered(10);
  local_state st;
  selector sel(policy::round_robin, 0);
  pick_request r;
  r.sticky_key = "user\x1fsession-1";
  r.host = "x.com";
  r.st = &st;
  exit* first = sel.pick(*s, r, t0).chosen;
  ASSERT_NE(first, nullptr);
  // The next rendezvous choice is what a retry excluding the first would get.
  const exit* ex[] = {first};
  pick_request retry = r;
  retry.exclude = ex;
  exit* second = sel.pick(*s, retry, t0).chosen;
  st.ban(*first, "x.com", t0 + 60s);
  selector other(policy::fastest, 7);  // any shard agrees
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(sel.pick(*s, r, t0 + 1s).chosen, second);
    EXPECT_EQ(other.pick(*s, r, t0 + 1s).chosen, second);
  }
  // Other hosts keep the session's exit; and it comes back when the ban ends.
  r.host = "y.com";
  EXPECT_EQ(sel.pick(*s, r, t0 + 1s).chosen, first);
  r.host = "x.com";
  EXPECT_EQ(sel.pick(*s, r, t0 + 60s).chosen, first);
}

TEST(SelectorCapacity, ProbingLetsOneRequestAtATime) {
  auto s = numbered(1);
  exit& e = at(*s, 0);
  eject(e, t0);  // cool-down 10 s
  EXPECT_EQ(e.state(t0 + 5s), exit_state::ejected);
  EXPECT_EQ(e.state(t0 + 10s), exit_state::probing);
  selector sel(policy::round_robin, 0);
  // Ejected and alone: the panic fallback, not a probe.
  auto res = sel.pick(*s, {}, t0 + 5s);
  EXPECT_EQ(res.chosen, &e);
  EXPECT_FALSE(res.probe);
  // Cool-down over: the first request is the probe, the next ones wait for it.
  res = sel.pick(*s, {}, t0 + 10s);
  EXPECT_EQ(res.chosen, &e);
  EXPECT_TRUE(res.probe);
  res = sel.pick(*s, {}, t0 + 11s);
  EXPECT_EQ(res.error, pick_error::no_capacity);
  EXPECT_EQ(res.retry_at, t0 + 10s + 30s);  // when the probe claim would lapse
  // The probe succeeds: healthy, everyone may use it.
  e.report({true, 0us}, t0 + 12s, eject_once);
  EXPECT_EQ(e.state(t0 + 12s), exit_state::healthy);
  for (int i = 0; i < 3; ++i) {
    res = sel.pick(*s, {}, t0 + 12s);
    EXPECT_EQ(res.chosen, &e);
    EXPECT_FALSE(res.probe);
  }
}

TEST(SelectorCapacity, ProbeFailureReEjectsWithDoubledCooldown) {
  auto s = numbered(2);
  exit& e = at(*s, 0);
  eject(e, t0);  // 10 s
  selector sel(policy::round_robin, 0);
  auto counts = tally(sel, *s, {}, 10, t0 + 10s);
  EXPECT_EQ(counts["e0"], 1);  // one probe, the rest on e1
  EXPECT_EQ(counts["e1"], 9);
  // The probe fails once: ejected again at once (failures_to_eject does not apply), 20 s.
  e.report({false, 0us}, t0 + 11s, health_config{.failures_to_eject = 3, .base_cooldown = 10s});
  EXPECT_EQ(e.state(t0 + 11s), exit_state::ejected);
  EXPECT_EQ(e.down_until(), t0 + 31s);
  EXPECT_EQ(tally(sel, *s, {}, 10, t0 + 30s).count("e0"), 0u);
  // Probing again at t0 + 31 s; a new probe may start.
  counts = tally(sel, *s, {}, 10, t0 + 31s);
  EXPECT_EQ(counts["e0"], 1);
}

TEST(SelectorCapacity, ProbeClaimLapsesAndCanBeReleased) {
  auto s = numbered(1);
  exit& e = at(*s, 0);
  eject(e, t0);
  selector sel(policy::random, 0);
  pick_request r;
  r.probe_timeout = 5s;
  EXPECT_TRUE(sel.pick(*s, r, t0 + 10s).probe);
  EXPECT_EQ(sel.pick(*s, r, t0 + 14s).error, pick_error::no_capacity);
  EXPECT_TRUE(sel.pick(*s, r, t0 + 15s).probe);  // the first probe never reported
  e.release_probe();
  EXPECT_TRUE(sel.pick(*s, r, t0 + 15s).probe);
}

TEST(SelectorCapacity, ProbeNotClaimedWhenTheExitHasNoToken) {
  auto s = snapshot::build({spec("a")}, nullptr, {.per_exit_rate = 1, .burst = 1});
  exit& e = at(*s, 0);
  eject(e, t0);
  selector sel(policy::round_robin, 0);
  ASSERT_TRUE(e.limiter().try_take(t0 + 10s));  // someone else took the token
  auto res = sel.pick(*s, {}, t0 + 10s);
  EXPECT_EQ(res.error, pick_error::no_capacity);
  EXPECT_EQ(e.probe_busy_until(t0 + 10s, 30s), std::nullopt);
  EXPECT_TRUE(sel.pick(*s, {}, t0 + 11s).probe);
}

}  // namespace

// Large pools take the bounded round-robin fast path: it must keep every rule of the full pass.
TEST(Selector, LargePoolRoundRobinFastPathKeepsTheRules) {
  std::vector<proto::exit_spec> specs;
  for (int i = 0; i < 1000; ++i) {
    specs.push_back(spec("e" + std::to_string(i), i % 2 == 0 ? "de" : "us", "", i % 4 < 2 ? "res" : "dc"));
  }
  auto s = snapshot::build(std::move(specs));
  ASSERT_GE(s->size(), fast_path_min);

  selector sel(policy::round_robin, 7);
  auto even = tally(sel, *s, {}, 2000);
  ASSERT_EQ(even.size(), 1000u);
  for (const auto& [id, n] : even) {
    EXPECT_EQ(n, 2) << id;
  }

  pick_request de_res;
  de_res.f.country = "de";
  de_res.f.type = "res";  // two fields: filter::matches is checked on this path
  auto filtered = tally(sel, *s, de_res, 500);
  EXPECT_EQ(filtered.size(), 250u);
  for (const auto& [id, n] : filtered) {
    const int i = std::stoi(id.substr(1));
    EXPECT_TRUE(i % 2 == 0 && i % 4 < 2) << id;
    EXPECT_EQ(n, 2) << id;
  }

  // Ejected, excluded and banned-for-this-host exits are skipped; other hosts still get the banned one.
  for (int i = 0; i < 100; ++i) {
    eject(*s->exits()[static_cast<std::size_t>(i)], t0);
  }
  local_state st;
  st.ban(*s->exits()[500], "a.test", t0 + 1h);
  const exit* excluded[] = {s->exits()[600].get()};
  pick_request req;
  req.host = "a.test";
  req.st = &st;
  req.exclude = excluded;
  auto rest = tally(sel, *s, req, 1798, t0 + 1s);
  EXPECT_EQ(rest.size(), 898u);
  for (const auto& [id, n] : rest) {
    const int i = std::stoi(id.substr(1));
    EXPECT_TRUE(i >= 100 && i != 500 && i != 600) << id;
  }
  req.host = "b.test";
  auto other = tally(sel, *s, req, 2000, t0 + 1s);
  EXPECT_EQ(other.count("e500"), 1u);
}

// ---- large pools: the bounded paths of random, least_inflight, fastest ---------------------

const policy sampled_policies[] = {policy::random, policy::least_inflight, policy::fastest};

// Never an excluded, ejected, banned (for this host) or non-matching exit, whatever the policy.
TEST(LargePool, SampledPicksKeepTheRules) {
  std::vector<proto::exit_spec> specs;
  for (int i = 0; i < 2000; ++i) {
    specs.push_back(spec("e" + std::to_string(i), i % 2 == 0 ? "de" : "us", "", i % 4 < 2 ? "res" : "dc"));
  }
  auto s = snapshot::build(std::move(specs));
  local_state st;
  std::vector<const exit*> excluded;
  for (int i = 0; i < 2000; ++i) {
    if (i % 10 == 1) {
      eject(at(*s, i), t0);
    } else if (i % 10 == 2) {
      st.ban(at(*s, i), "a.test", t0 + 1h);
    } else if (i % 10 == 3) {
      excluded.push_back(&at(*s, i));
    }
  }
  for (policy p : sampled_policies) {
    selector sel(p, 11);
    pick_request r;
    r.host = "a.test";
    r.st = &st;
    r.exclude = excluded;
    auto counts = tally(sel, *s, r, 4000, t0 + 1s);
    EXPECT_GT(counts.size(), 1000u) << policy_name(p);
    for (const auto& [id, n] : counts) {
      const int i = std::stoi(id.substr(1));
      EXPECT_TRUE(i % 10 < 1 || i % 10 > 3) << policy_name(p) << " " << id;
    }
    // Two filter fields: the candidates (the country's list) hold exits of both types.
    r.f.country = "de";
    r.f.type = "res";
    for (const auto& [id, n] : tally(sel, *s, r, 2000, t0 + 1s)) {
      const int i = std::stoi(id.substr(1));
      EXPECT_TRUE(i % 4 == 0 && (i % 10 < 1 || i % 10 > 3)) << policy_name(p) << " " << id;
    }
    // Another host: the banned exits are fine there.
    r = {};
    r.host = "b.test";
    r.st = &st;
    auto other = tally(sel, *s, r, 4000, t0 + 1s);
    EXPECT_TRUE(std::any_of(other.begin(), other.end(), [](const auto& kv) {
      return std::stoi(kv.first.substr(1)) % 10 == 2;
    })) << policy_name(p);
  }
}

TEST(LargePool, RandomIsUniform) {
  auto s = numbered(1000);
  selector sel(policy::random, 5);
  const int n = 200000;
  auto counts = tally(sel, *s, {}, n);
  ASSERT_EQ(counts.size(), 1000u);
  for (const auto& [id, c] : counts) {
    EXPECT_NEAR(c, 200, 80) << id;  // sd ~14
  }
  // Ejecting half of them: uniform over the other half.
  for (int i = 0; i < 1000; i += 2) {
    eject(at(*s, i), t0);
  }
  auto rest = tally(sel, *s, {}, n, t0 + 1s);
  ASSERT_EQ(rest.size(), 500u);
  for (const auto& [id, c] : rest) {
    EXPECT_EQ(std::stoi(id.substr(1)) % 2, 1) << id;
    EXPECT_NEAR(c, 400, 120) << id;  // sd ~20
  }
}

TEST(LargePool, RandomRespectsWeights) {
  std::vector<proto::exit_spec> specs;
  for (int i = 0; i < 1000; ++i) {
    specs.push_back(spec("e" + std::to_string(i), "", "", "", i < 500 ? 1.0 : 3.0));
  }
  specs.push_back(spec("zero", "", "", "", 0.0));
  auto s = snapshot::build(std::move(specs));
  ASSERT_FALSE(s->uniform_weight());
  selector sel(policy::random, 9);
  const int n = 100000;
  auto counts = tally(sel, *s, {}, n);
  int heavy = 0;
  for (const auto& [id, c] : counts) {
    heavy += id != "zero" && std::stoi(id.substr(1)) >= 500 ? c : 0;
  }
  EXPECT_NEAR(static_cast<double>(heavy) / n, 0.75, 0.01);
  EXPECT_EQ(counts.count("zero"), 0u);
}

TEST(LargePool, LeastInflightPrefersTheLessLoadedSample) {
  auto s = numbered(1000);
  std::vector<lease> busy;
  for (int i = 0; i < 1000; i += 2) {  // even exits carry 3 leases each
    for (int k = 0; k < 3; ++k) {
      busy.emplace_back(at(*s, i));
    }
  }
  selector sel(policy::least_inflight, 77);
  int idle = 0;
  const int n = 8000;
  std::set<const exit*> seen;
  for (int i = 0; i < n; ++i) {
    auto* e = sel.pick(*s, {}, t0).chosen;
    ASSERT_NE(e, nullptr);
    idle += e->inflight() == 0 ? 1 : 0;
    seen.insert(e);
  }
  // Two samples, the less loaded wins: idle unless both were busy (~1/4).
  EXPECT_NEAR(static_cast<double>(idle) / n, 0.75, 0.03);
  EXPECT_GT(seen.size(), 900u);  // no herding onto one exit
}

TEST(LargePool, FastestPrefersTheFasterSample) {
  auto s = numbered(1000);
  health_config cfg;
  for (int i = 0; i < 1000; ++i) {
    at(*s, i).report({true, i % 2 == 0 ? 100ms : 10ms}, t0, cfg);
  }
  selector sel(policy::fastest, 4);
  const int n = 8000;
  int fast = 0;
  std::set<const exit*> seen;
  for (int i = 0; i < n; ++i) {
    auto* e = sel.pick(*s, {}, t0).chosen;
    ASSERT_NE(e, nullptr);
    fast += e->ewma_latency_us() < 50000 ? 1 : 0;
    seen.insert(e);
  }
  // 95%: best of four samples (slow only if all four are, 1/16); 5%: one sample.
  EXPECT_NEAR(static_cast<double>(fast) / n, 0.95 * (1 - 1.0 / 16) + 0.05 / 2, 0.02);
  EXPECT_GT(seen.size(), 750u);  // spread over the fast half and some of the slow one
}

// Tokens and probe slots are taken on the bounded paths too: with one token per exit
// every exit is chosen once, then no_capacity until the tokens come back. Same for the
// single probe slot of exits whose cool-down has ended.
TEST(LargePool, TokensAndProbeSlotsAreTakenOnEveryPath) {
  for (policy p : all_policies) {
    for (bool sticky : {false, true}) {
      auto s = snapshot::build(
          [] {
            std::vector<proto::exit_spec> specs;
            for (int i = 0; i < 300; ++i) {
              specs.push_back(spec("e" + std::to_string(i)));
            }
            return specs;
          }(),
          nullptr, {.per_exit_rate = 1, .burst = 1});
      selector sel(p, 21);
      pick_request r;
      r.sticky_key = sticky ? "one-session" : "";
      std::set<const exit*> seen;
      for (int i = 0; i < 300; ++i) {
        auto res = sel.pick(*s, r, t0);
        ASSERT_NE(res.chosen, nullptr) << policy_name(p) << " " << i;
        EXPECT_TRUE(seen.insert(res.chosen).second) << policy_name(p) << " chose an exit without a token";
      }
      auto res = sel.pick(*s, r, t0);
      EXPECT_EQ(res.error, pick_error::no_capacity) << policy_name(p);
      EXPECT_EQ(res.retry_at, t0 + 1s) << policy_name(p);

      auto t = numbered(300);
      for (const auto& e : t->exits()) {
        eject(*e, t0);
      }
      seen.clear();
      for (int i = 0; i < 300; ++i) {
        auto probe = sel.pick(*t, r, t0 + 10s);
        ASSERT_NE(probe.chosen, nullptr) << policy_name(p);
        EXPECT_TRUE(probe.probe) << policy_name(p);
        EXPECT_TRUE(seen.insert(probe.chosen).second) << policy_name(p) << " probe slot taken twice";
      }
      EXPECT_EQ(sel.pick(*t, r, t0 + 10s).error, pick_error::no_capacity) << policy_name(p);
    }
  }
}

TEST(LargePool, ErrorsComeFromTheFullPass) {
  auto s = numbered(500);
  for (policy p : all_policies) {
    selector sel(p, 1);
    pick_request r;
    r.f.country = "zz";
    EXPECT_EQ(sel.pick(*s, r, t0).error, pick_error::no_match);
    std::vector<const exit*> all;
    for (const auto& e : s->exits()) {
      all.push_back(e.get());
    }
    r = {};
    r.exclude = all;
    EXPECT_EQ(sel.pick(*s, r, t0).error, pick_error::exhausted);
    local_state st;
    for (int i = 0; i < 500; ++i) {
      st.ban(at(*s, i), "x.test", t0 + std::chrono::seconds(60 + i));
    }
    r = {};
    r.host = "x.test";
    r.st = &st;
    auto res = sel.pick(*s, r, t0);
    EXPECT_EQ(res.error, pick_error::no_capacity) << policy_name(p);
    EXPECT_EQ(res.retry_at, t0 + 60s) << policy_name(p);
    EXPECT_EQ(res.banned, 500u);
    // Everything ejected: the panic fallback still answers.
    auto t = numbered(300);
    for (int i = 0; i < 300; ++i) {
      eject(at(*t, i), t0 + (i == 7 ? 0s : 1s));
    }
    auto panic = sel.pick(*t, {}, t0 + 2s);
    ASSERT_NE(panic.chosen, nullptr);
    EXPECT_EQ(panic.chosen->id(), "e7");
  }
}

}  // namespace exitpool::pool

namespace exitpool::pool {
namespace {

// 3,000 exits over tiers 0, 1 and 2 (exit i is in tier i % 3).
std::shared_ptr<const snapshot> three_tiers() {
  std::vector<proto::exit_spec> specs;
  for (int i = 0; i < 3000; ++i) {
    auto sp = spec("e" + std::to_string(i), i % 2 == 0 ? "de" : "us");
    sp.tags.emplace_back("tier", std::to_string(i % 3));
    specs.push_back(std::move(sp));
  }
  return snapshot::build(std::move(specs));
}

// Multi-tier pools take the bounded path too (issue 16): only the tier the full pass would
// choose from is sampled. Power of two choices tells the paths apart: the full pass would
// always take the one idle exit; sampling spreads over many.
TEST(LargePool, MultiTierPicksSampleTheRightTier) {
  auto s = three_tiers();
  ASSERT_FALSE(s->single_tier());
  std::vector<lease> busy;
  for (int i = 0; i < 3000; ++i) {
    if (i != 0 && i != 1) {  // e0 (tier 0) and e1 (tier 1) are the only idle exits
      busy.emplace_back(at(*s, i));
    }
  }
  local_state st;
  selector sel(policy::least_inflight, 5);
  pick_request r;
  r.host = "a.test";
  r.st = &st;
  std::set<int> seen;
  for (int k = 0; k < 2000; ++k) {
    const auto res = sel.pick(*s, r, t0);
    ASSERT_NE(res.chosen, nullptr);
    EXPECT_EQ(res.tier, 0);
    seen.insert(std::stoi(res.chosen->id().substr(1)));
  }
  EXPECT_GT(seen.size(), 100u) << "sampled, not the full pass's single least-loaded exit";
  // The host's remembered tier: sampling starts there.
  st.record_tier("a.test", 1, t0);
  seen.clear();
  for (int k = 0; k < 2000; ++k) {
    const auto res = sel.pick(*s, r, t0);
    ASSERT_NE(res.chosen, nullptr);
    EXPECT_EQ(res.tier, 1);
    seen.insert(std::stoi(res.chosen->id().substr(1)));
  }
  EXPECT_GT(seen.size(), 100u);
  // A filter: tiers are taken among the matching exits (even ids: de).
  r.f.country = "de";
  for (const auto& [id, n] : tally(sel, *s, r, 500)) {
    const int i = std::stoi(id.substr(1));
    EXPECT_TRUE(i % 2 == 0 && i % 3 == 1) << id;
  }
}

TEST(LargePool, MultiTierFallsToTheNextTierAndStaysSticky) {
  auto s = three_tiers();
  local_state st;
  for (int i = 0; i < 3000; i += 3) {
    eject(at(*s, i), t0);  // all of tier 0 down
  }
  for (policy p : all_policies) {
    selector sel(p, 9);
    for (const auto& [id, n] : tally(sel, *s, {}, 300, t0 + 1s)) {
      EXPECT_EQ(std::stoi(id.substr(1)) % 3, 1) << policy_name(p) << " " << id;  // the full pass: tier 1
    }
  }
  selector a(policy::random, 1);
  selector b(policy::random, 2);
  pick_request r;
  r.sticky_key = "session-7";
  const exit* first = a.pick(*s, r, t0 + 1s).chosen;
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->tier(), 1);
  for (int k = 0; k < 20; ++k) {
    EXPECT_EQ(b.pick(*s, r, t0 + 1s).chosen, first) << "every shard, the same exit";
  }
}

}  // namespace
}  // namespace exitpool::pool
