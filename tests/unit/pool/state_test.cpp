#include "pool/state.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace exitpool::pool {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + 1000h;

std::shared_ptr<const snapshot> two(const limits_config& limits = {}) {
  std::vector<proto::exit_spec> specs(2);
  specs[0].id = "a";
  specs[1].id = "b";
  return snapshot::build(std::move(specs), nullptr, limits);
}

// The in-process backend: each operation reaches the table or the exit atomics behind it.
TEST(LocalState, BansArePerExitAndHost) {
  auto s = two();
  local_state st;
  const exit& a = *s->find("a");
  const exit& b = *s->find("b");
  st.ban(a, "x.test", t0 + 10s);
  st.ban(a, "x.test", t0 + 5s);  // a shorter one does not shorten it
  EXPECT_EQ(st.banned_until(a, "x.test", t0), t0 + 10s);
  EXPECT_FALSE(st.banned_until(b, "x.test", t0).has_value());
  std::vector<std::uint64_t> hashes{a.id_hash(), b.id_hash()};
  std::vector<time_point> out(2);
  st.banned_until_many("x.test", hash64("x.test"), hashes, t0, out);
  EXPECT_EQ(out[0], t0 + 10s);
  EXPECT_EQ(out[1], time_point::min());
  ASSERT_EQ(st.bans_by_exit(t0).at(a.id_hash()).size(), 1u);
  st.sweep(t0 + 11s);
  EXPECT_TRUE(st.bans_by_exit(t0 + 11s).empty());
}

TEST(LocalState, ExitAndHostTokens) {
  auto s = two({.per_exit_rate = 1, .burst = 1, .per_exit_host_rate = 0.5});
  local_state st({.per_exit_rate = 1, .burst = 1, .per_exit_host_rate = 0.5});
  exit& a = *const_cast<exit*>(s->find("a"));
  EXPECT_TRUE(st.host_rate_limited());
  EXPECT_EQ(st.exit_token_at(a, t0), t0);
  EXPECT_TRUE(st.take_exit_token(a, t0));
  EXPECT_FALSE(st.take_exit_token(a, t0));
  EXPECT_EQ(st.exit_token_at(a, t0), t0 + 1s);
  st.refund_exit_token(a);
  EXPECT_TRUE(st.take_exit_token(a, t0));
  EXPECT_TRUE(st.take_host_token(a, "x.test", t0));
  EXPECT_FALSE(st.take_host_token(a, "x.test", t0));
  EXPECT_TRUE(st.take_host_token(a, "y.test", t0));
  EXPECT_EQ(st.host_token_at(a, "x.test", t0), t0 + 2s);
  st.refund_host_token(a, "x.test");
  EXPECT_EQ(st.host_token_at(a, "x.test", t0), t0);
}

TEST(LocalState, LeasesHonourTheCap) {
  auto s = two({.per_exit_concurrency = 1});
  local_state st;
  exit& a = *const_cast<exit*>(s->find("a"));
  auto l1 = st.try_acquire(a);
  EXPECT_TRUE(l1);
  EXPECT_FALSE(st.try_acquire(a));
  l1.release();
  EXPECT_TRUE(st.try_acquire(a));
}

TEST(LocalState, ReportUsesItsHealthConfig) {
  auto s = two();
  local_state st({}, {.failures_to_eject = 1, .base_cooldown = 7s});
  exit& a = *const_cast<exit*>(s->find("a"));
  st.report(a, {false, 1ms}, t0);
  EXPECT_EQ(a.state(t0), exit_state::ejected);
  EXPECT_EQ(a.down_until(), t0 + 7s);
}

TEST(LocalState, SessionsAndTiers) {
  local_state st({}, {}, 60s);
  const auto g = st.session("k", 10s, t0).generation;
  EXPECT_EQ(st.session("k", 10s, t0).anchor, 0u);
  st.anchor_session("k", g, 42);
  EXPECT_EQ(st.session("k", 10s, t0 + 5s).generation, g);
  EXPECT_EQ(st.session("k", 10s, t0 + 5s).anchor, 42u);
  st.anchor_session("k", g + 1, 7);  // another generation: ignored
  EXPECT_EQ(st.session("k", 10s, t0 + 6s).anchor, 42u);
  const auto next = st.session("k", 10s, t0 + 11s);
  EXPECT_NE(next.generation, g);
  EXPECT_EQ(next.anchor, 0u);  // a new lifetime starts without an exit
  st.record_tier("x.test", 2, t0);
  EXPECT_EQ(st.start_tier("x.test", t0 + 59s), 2);
  EXPECT_FALSE(st.start_tier("x.test", t0 + 60s).has_value());
}

}  // namespace
}  // namespace exitpool::pool
