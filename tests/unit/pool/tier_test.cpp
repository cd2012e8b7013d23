#include "pool/tier.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "pool/selector.hpp"

namespace exitpool::pool {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + 1000h;

proto::exit_spec spec(std::string id, std::string tier = "") {
  proto::exit_spec s;
  s.scheme = proto::exit_scheme::http;
  s.host = "10.0.0.1";
  s.port = 8080;
  s.id = std::move(id);
  if (!tier.empty()) {
    s.tags.emplace_back("tier", std::move(tier));
  }
  return s;
}

// dc0, dc1 (tier 0), isp0 (tier 1), res0, res1 (tier 2).
std::shared_ptr<const snapshot> tiered() {
  return snapshot::build({spec("res0", "2"), spec("dc0"), spec("isp0", "1"), spec("dc1", "0"), spec("res1", "2")});
}

std::string pick_id(selector& sel, const snapshot& s, const pick_request& r, time_point now = t0) {
  auto res = sel.pick(s, r, now);
  return res.chosen != nullptr ? res.chosen->id() : std::string("<") + pick_error_name(res.error) + ">";
}

TEST(Tier, ParsedFromTheTag) {
  struct {
    const char* value;
    int want;
  } cases[] = {{"", 0}, {"0", 0}, {"1", 1}, {"+2", 2}, {"-1", -1}, {"10", 10}, {"x", 0}, {"1x", 0}, {"1.5", 0}};
  for (const auto& c : cases) {
    auto s = spec("e");
    if (*c.value != '\0') {
      s.tags.emplace_back("tier", c.value);
    }
    exit e(s, 0);
    EXPECT_EQ(e.tier(), c.want) << c.value;
  }
  auto s = spec("e");
  s.tags.emplace_back("Tier", "3");  // keys are case-insensitive
  EXPECT_EQ(exit(s, 0).tier(), 3);
}

TEST(Tier, LowestTierIsPreferred) {
  auto s = tiered();
  for (policy p : {policy::round_robin, policy::random, policy::least_inflight, policy::fastest}) {
    selector sel(p, 5);
    std::map<std::string, int> counts;
    for (int i = 0; i < 200; ++i) {
      auto res = sel.pick(*s, {}, t0);
      ASSERT_NE(res.chosen, nullptr);
      EXPECT_EQ(res.tier, 0);
      ++counts[res.chosen->id()];
    }
    EXPECT_EQ(counts.size(), 2u) << policy_name(p);  // dc0 and dc1 only
  }
}

TEST(Tier, EscalatesOnlyWhenTheLowerTierCannotServe) {
  auto s = tiered();
  const health_config cfg{.failures_to_eject = 1};
  local_state st;
  selector sel(policy::round_robin, 0);
  pick_request r;
  r.host = "shop.example";
  r.st = &st;
  // dc0 banned for the host, dc1 ejected: tier 1 serves the host.
  st.ban(*const_cast<exit*>(s->find("dc0")), "shop.example", t0 + 60s);
  const_cast<exit*>(s->find("dc1"))->report({false, 0us}, t0, cfg);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(pick_id(sel, *s, r), "isp0");
  }
  // Other hosts still get tier 0 (dc0; dc1 is cooling down).
  r.host = "other.example";
  EXPECT_EQ(pick_id(sel, *s, r), "dc0");
  // isp0 tried and failed for this request: on to tier 2.
  r.host = "shop.example";
  const exit* tried[] = {s->find("isp0")};
  r.exclude = tried;
  auto res = sel.pick(*s, r, t0);
  ASSERT_NE(res.chosen, nullptr);
  EXPECT_EQ(res.tier, 2);
  // Everything in tiers 1 and 2 excluded or banned: the panic fallback (dc1, cooling
  // down) rather than a banned exit.
  const exit* all[] = {s->find("isp0"), s->find("res0"), s->find("res1")};
  r.exclude = all;
  EXPECT_EQ(pick_id(sel, *s, r), "dc1");
}

TEST(Tier, ExhaustedTierFallsThroughWithRateLimits) {
  auto s = snapshot::build({spec("dc0"), spec("res0", "1")}, nullptr, {.per_exit_rate = 1, .burst = 1});
  selector sel(policy::round_robin, 0);
  EXPECT_EQ(pick_id(sel, *s, {}), "dc0");
  EXPECT_EQ(pick_id(sel, *s, {}), "res0");  // dc0 has no token: next tier
  auto res = sel.pick(*s, {}, t0);
  EXPECT_EQ(res.error, pick_error::no_capacity);
  EXPECT_EQ(res.retry_at, t0 + 1s);
  EXPECT_EQ(pick_id(sel, *s, {}, t0 + 1s), "dc0");
}

TEST(TierMemory, Rule) {
  tier_memory mem(60s);
  EXPECT_EQ(mem.start_tier("a.com", t0), std::nullopt);
  mem.record("a.com", 2, t0);
  EXPECT_EQ(mem.start_tier("a.com", t0 + 1s), 2);
  // A higher tier that worked does not raise it; a lower one lowers it.
  mem.record("a.com", 3, t0 + 10s);
  EXPECT_EQ(mem.start_tier("a.com", t0 + 10s), 2);
  mem.record("a.com", 1, t0 + 20s);
  EXPECT_EQ(mem.start_tier("a.com", t0 + 20s), 1);
  // The expiry is anchored at the first record, never extended.
  EXPECT_EQ(mem.start_tier("a.com", t0 + 59s), 1);
  EXPECT_EQ(mem.start_tier("a.com", t0 + 60s), std::nullopt);
  // After expiry a record starts afresh (may go up again).
  mem.record("a.com", 2, t0 + 61s);
  EXPECT_EQ(mem.start_tier("a.com", t0 + 61s), 2);
  // Tier 0 means "no memory".
  mem.record("a.com", 0, t0 + 62s);
  EXPECT_EQ(mem.start_tier("a.com", t0 + 62s), std::nullopt);
  EXPECT_EQ(mem.size(), 0u);
  // Hosts are independent; empty host ignored.
  mem.record("b.com", 1, t0);
  mem.record("", 1, t0);
  EXPECT_EQ(mem.start_tier("c.com", t0), std::nullopt);
  EXPECT_EQ(mem.size(), 1u);
  EXPECT_EQ(mem.sweep(t0 + 1h), 0u);
}

TEST(TierMemory, BoundedSize) {
  tier_memory mem(60s, 64 * 4);
  for (int i = 0; i < 10000; ++i) {
    mem.record("h" + std::to_string(i), 1, t0 + std::chrono::milliseconds(i));
  }
  EXPECT_LE(mem.size(), 64u * 4u);
}

TEST(TierMemory, SelectionStartsAtTheRememberedTier) {
  auto s = tiered();
  local_state mem({}, {}, 600s);
  selector sel(policy::round_robin, 0);
  pick_request r;
  r.host = "shop.example";
  r.st = &mem;
  EXPECT_EQ(pick_id(sel, *s, r).substr(0, 2), "dc");
  mem.record_tier("shop.example", 2, t0);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(pick_id(sel, *s, r).substr(0, 3), "res");
  }
  // Other hosts unaffected.
  r.host = "other.example";
  EXPECT_EQ(pick_id(sel, *s, r).substr(0, 2), "dc");
  // Nothing usable at or above the remembered tier: the lower tiers still serve.
  r.host = "shop.example";
  const exit* tried[] = {s->find("res0"), s->find("res1")};
  r.exclude = tried;
  EXPECT_EQ(pick_id(sel, *s, r).substr(0, 2), "dc");
  // Memory expired: back to tier 0.
  r.exclude = {};
  EXPECT_EQ(pick_id(sel, *s, r, t0 + 600s).substr(0, 2), "dc");
}

TEST(Tier, StickyStaysWithinTheTier) {
  auto s = tiered();
  selector sel(policy::random, 1);
  for (int i = 0; i < 100; ++i) {
    const std::string key = "session-" + std::to_string(i);
    pick_request r;
    r.sticky_key = key;
    auto res = sel.pick(*s, r, t0);
    ASSERT_NE(res.chosen, nullptr);
    EXPECT_EQ(res.tier, 0);
  }
}

}  // namespace
}  // namespace exitpool::pool
