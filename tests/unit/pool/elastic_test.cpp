#include "pool/elastic.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "pool/attempt.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::pool {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + 1000h;

// A pool of lines as written in a pool file.
std::shared_ptr<const snapshot> pool_of(const std::vector<std::string>& lines, const limits_config& limits = {}) {
  std::string text;
  for (const auto& l : lines) {
    text += l + "\n";
  }
  return snapshot::build(proto::parse_pool_text(text, "pool.txt"), nullptr, limits);
}

const std::string line_p = "http://acme:pw@127.0.0.1:8000 provider=decodo countries=us,de id=p";  // sends user-acme-...

TEST(Elastic, RotationGivesEveryAttemptAFreshProviderSession) {
  auto s = pool_of({line_p});
  local_state st;
  driver d(policy::round_robin, 1, st, 30s);
  std::set<std::string> users;
  for (int i = 0; i < 20; ++i) {
    auto r = d.begin(s, {.host = "a.test"}, t0);
    ASSERT_TRUE(r.granted);
    const exit& v = r.granted.chosen();
    ASSERT_NE(v.parent(), nullptr);
    EXPECT_EQ(v.parent()->id(), "p");
    EXPECT_EQ(v.spec().user.rfind("user-acme-session-", 0), 0u) << v.spec().user;
    EXPECT_EQ(v.spec().pass, "pw");
    EXPECT_EQ(v.id().rfind("p~", 0), 0u);
    users.insert(v.spec().user);
  }
  EXPECT_EQ(users.size(), 20u);
  EXPECT_EQ(s->exits()[0]->virtuals()->size(), 0u);  // rotation keeps nothing
}

TEST(Elastic, AStickySessionKeepsItsVirtualExitAndCarriesTheTargeting) {
  auto s = pool_of({line_p});
  local_state st;
  driver d(policy::round_robin, 1, st, 30s);
  attempt_request req{.f = {.country = "de"}, .sticky_key = "alice\x1fs1", .sticky_ttl = 30min, .host = "a.test"};
  auto first = d.begin(s, req, t0);
  ASSERT_TRUE(first.granted);
  const std::string user = first.granted.chosen().spec().user;
  EXPECT_NE(user.find("-country-de-session-"), std::string::npos) << user;
  EXPECT_NE(user.find("-sessionduration-30"), std::string::npos) << user;
  first.granted.complete({.connected = true}, t0);
  first.granted.release();
  for (int i = 0; i < 5; ++i) {
    auto again = d.begin(s, req, t0 + 1s);
    ASSERT_TRUE(again.granted);
    EXPECT_EQ(again.granted.chosen().spec().user, user);
  }
  // Another shard (another driver) derives the same provider session.
  driver other(policy::random, 99, st, 30s);
  local_state elsewhere;
  driver fleet(policy::random, 7, elsewhere, 30s);
  EXPECT_EQ(other.begin(s, req, t0 + 2s).granted.chosen().spec().user, user);
  EXPECT_EQ(fleet.begin(s, req, t0 + 2s).granted.chosen().spec().user, user);
}

TEST(Elastic, ABanMovesTheSessionToAFreshVirtualExitAndBansOnlyThatOneForTheHost) {
  auto s = pool_of({line_p});
  local_state st;
  driver d(policy::round_robin, 1, st, 30s);
  attempt_request req{.sticky_key = "bob\x1fs", .host = "shop.test"};
  auto first = d.begin(s, req, t0);
  ASSERT_TRUE(first.granted);
  const exit* v0 = &first.granted.chosen();
  const std::string user0 = v0->spec().user;
  first.granted.complete({.connected = true, .status = 429, .ban = 60s}, t0);
  EXPECT_TRUE(st.banned_until(*v0, "shop.test", t0 + 1s).has_value());
  EXPECT_FALSE(st.banned_until(*v0, "other.test", t0 + 1s).has_value());
  EXPECT_FALSE(st.banned_until(*s->exits()[0], "shop.test", t0 + 1s).has_value());  // not the line
  std::vector<const exit*> tried{v0};
  req.exclude = tried;
  auto moved = d.begin(s, req, t0 + 1s);
  ASSERT_TRUE(moved.granted);
  const std::string user1 = moved.granted.chosen().spec().user;
  EXPECT_NE(user1, user0);
  moved.granted.complete({.connected = true, .status = 200}, t0 + 1s);
  moved.granted.release();
  req.exclude = {};
  for (const char* host : {"shop.test", "other.test"}) {  // it stays where it moved
    req.host = host;
    auto after = d.begin(s, req, t0 + 2s);
    ASSERT_TRUE(after.granted);
    EXPECT_EQ(after.granted.chosen().spec().user, user1) << host;
  }
  // Rotation through the same line is not held back by the virtual exit's ban.
  EXPECT_TRUE(d.begin(s, {.host = "shop.test"}, t0 + 2s).granted);
}

TEST(Elastic, CountriesDecideWhichLinesServeARequestBesideOrdinaryExits) {
  auto s = pool_of({"direct://127.0.0.2 country=de id=d", "direct://127.0.0.3 country=fr id=f", line_p,
                    "socks5://u:k@127.0.0.1:9000 provider=soax countries=* id=any"});
  local_state st;
  driver d(policy::round_robin, 1, st, 30s);
  auto ids = [&](const std::string& country) {
    std::set<std::string> out;
    for (int i = 0; i < 12; ++i) {
      auto r = d.begin(s, {.f = {.country = country}}, t0);
      if (!r.granted) {
        out.insert(std::string("refused:") + std::string(failure_name(r.refused)));
        continue;
      }
      const exit& e = r.granted.chosen();
      out.insert(e.parent() != nullptr ? e.parent()->id() : e.id());
    }
    return out;
  };
  EXPECT_EQ(ids("de"), (std::set<std::string>{"d", "p", "any"}));
  EXPECT_EQ(ids("fr"), (std::set<std::string>{"f", "any"}));
  EXPECT_EQ(ids("jp"), (std::set<std::string>{"any"}));  // no ordinary exit has jp
  auto soax_jp = d.begin(s, {.f = {.country = "jp", .city = "tokyo"}}, t0);
  EXPECT_EQ(soax_jp.refused, failure::no_match);  // soax's line declares no cities=
  auto state = d.begin(s, {.f = {.country = "us", .state = "ny"}}, t0);
  ASSERT_TRUE(state.granted);
  const std::string& user = state.granted.chosen().spec().user;  // decodo's state-, soax's region-
  EXPECT_TRUE(user.find("-state-ny") != std::string::npos || user.find("-region-ny") != std::string::npos) << user;
}

TEST(Elastic, LineLimitsBoundTheWholeLineAndPerExitLimitsEachVirtualExit) {
  auto s =
      pool_of({"http://acme:pw@127.0.0.1:8000 provider=brightdata max_sessions=2 id=p"}, {.per_exit_concurrency = 1});
  local_state st;
  driver d(policy::round_robin, 1, st, 30s);
  auto a = d.begin(s, {}, t0);
  auto b = d.begin(s, {}, t0);
  ASSERT_TRUE(a.granted);
  ASSERT_TRUE(b.granted);  // two virtual exits, one lease each
  auto c = d.begin(s, {}, t0);
  EXPECT_EQ(c.refused, failure::no_capacity);  // max_sessions=2 on the line
  EXPECT_EQ(s->exits()[0]->inflight(), 2);
  a.granted.release();
  EXPECT_TRUE(d.begin(s, {}, t0).granted);

  auto rated = pool_of({"http://acme:pw@127.0.0.1:8000 provider=brightdata rate=1 id=p"});
  local_state st2;
  driver d2(policy::round_robin, 1, st2, 30s);
  EXPECT_TRUE(d2.begin(rated, {}, t0).granted);
  EXPECT_EQ(d2.begin(rated, {}, t0).refused, failure::no_capacity);
  EXPECT_TRUE(d2.begin(rated, {}, t0 + 1s).granted);
}

TEST(Elastic, TheLineHearsItsVirtualExitsHealth) {
  auto s = pool_of({line_p});
  local_state st({}, {.failures_to_eject = 2, .base_cooldown = 10s});
  driver d(policy::round_robin, 1, st, 30s);
  for (int i = 0; i < 2; ++i) {
    auto r = d.begin(s, {}, t0);
    ASSERT_TRUE(r.granted);
    r.granted.complete({.who = fault::exit, .error = failure::connection_refused}, t0);
  }
  EXPECT_EQ(s->exits()[0]->state(t0), exit_state::ejected);  // the gateway refused twice
  EXPECT_EQ(s->exits()[0]->failures(), 2u);
}

TEST(Elastic, TiersAndHostLimitsWorkAsForOrdinaryExits) {
  // The provider line is tier 0, a local exit tier 1: the line is used while it has capacity.
  auto s = pool_of(
      {"http://acme:pw@127.0.0.1:8000 provider=brightdata rate=1 tier=0 id=p", "direct://127.0.0.2 tier=1 id=d"});
  local_state st;
  driver d(policy::round_robin, 1, st, 30s);
  auto first = d.begin(s, {.host = "a.test"}, t0);
  ASSERT_TRUE(first.granted);
  EXPECT_EQ(first.granted.tier(), 0);
  EXPECT_NE(first.granted.line(), nullptr);
  auto second = d.begin(s, {.host = "a.test"}, t0);  // the line's rate=1 is spent: the next tier
  ASSERT_TRUE(second.granted);
  EXPECT_EQ(second.granted.chosen().id(), "d");
  // --per-exit-host-rate applies to each virtual exit, not to the whole line.
  local_state hosts({.per_exit_host_rate = 1});
  driver h(policy::round_robin, 1, hosts, 30s);
  auto line_only = pool_of({line_p});
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(h.begin(line_only, {.host = "a.test"}, t0).granted) << i;  // fresh virtual exits
  }
  attempt_request sticky{.sticky_key = "k", .host = "a.test"};
  EXPECT_TRUE(h.begin(line_only, sticky, t0).granted);
  EXPECT_EQ(h.begin(line_only, sticky, t0).refused, failure::no_capacity);  // its own virtual exit waits
}

TEST(Elastic, ReloadKeepsAnUnchangedLineAndItsSessions) {
  auto s = pool_of({line_p});
  auto again = snapshot::build(proto::parse_pool_text(line_p + "\n", "pool.txt"), s.get());
  EXPECT_EQ(again->carried_over(), 1u);
  auto changed = snapshot::build(proto::parse_pool_text(line_p + " cities=*\n", "pool.txt"), s.get());
  EXPECT_EQ(changed->carried_over(), 0u);
}

}  // namespace
}  // namespace exitpool::pool
