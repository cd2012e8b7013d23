#include "admin/history.hpp"

#include <gtest/gtest.h>

namespace exitpool::admin {
namespace {

using namespace std::chrono_literals;
const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;

traffic_sample at(std::chrono::seconds s, std::uint64_t requests, std::uint64_t errors = 0) {
  traffic_sample x;
  x.at = t0 + s;
  x.requests = requests;
  x.errors = errors;
  x.bytes_up = requests * 10;
  x.bytes_down = requests * 100;
  return x;
}

TEST(TrafficHistory, SampleOfSumsEveryProtocolAndCountsNotOkAsErrors) {
  metrics_totals t;
  t.requests[0][static_cast<std::size_t>(request_outcome::ok)] = 5;
  t.requests[1][static_cast<std::size_t>(request_outcome::ok)] = 2;
  t.requests[2][static_cast<std::size_t>(request_outcome::timeout)] = 3;
  t.requests[0][static_cast<std::size_t>(request_outcome::no_exit)] = 1;
  t.dial_failures[0] = 4;
  t.dial_failures[3] = 1;
  t.bans = 7;
  t.bytes_client_to_upstream = 11;
  t.bytes_upstream_to_client = 12;
  auto s = sample_of(t, t0);
  EXPECT_EQ(s.requests, 11u);
  EXPECT_EQ(s.errors, 4u);
  EXPECT_EQ(s.dial_failures, 5u);
  EXPECT_EQ(s.bans, 7u);
  EXPECT_EQ(s.bytes_up, 11u);
  EXPECT_EQ(s.bytes_down, 12u);
  EXPECT_EQ(s.at, t0);
}

TEST(TrafficHistory, RecentRatesNeedTwoSamples) {
  traffic_history h(10);
  EXPECT_EQ(h.recent(10s).requests, 0u);
  h.record(at(0s, 100));
  EXPECT_EQ(h.recent(10s).seconds, 0);
  for (int i = 1; i <= 20; ++i) {
    h.record(at(std::chrono::seconds(i), 100 + 5 * static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(i)));
  }
  // Kept: seconds 11..20. The last 5 s: from second 15 to 20.
  auto r = h.recent(5s);
  EXPECT_DOUBLE_EQ(r.seconds, 5);
  EXPECT_EQ(r.requests, 25u);
  EXPECT_EQ(r.errors, 5u);
  // A window longer than what is kept reaches back to the oldest sample.
  auto all = h.recent(60s);
  EXPECT_DOUBLE_EQ(all.seconds, 9);
  EXPECT_EQ(all.requests, 45u);
}

TEST(TrafficHistory, StepsAreContiguousDeltasOldestFirst) {
  traffic_history h(3600);
  // 35 s of one request a second, then a quiet 10 s.
  for (int i = 0; i <= 35; ++i) {
    h.record(at(std::chrono::seconds(i), static_cast<std::uint64_t>(i)));
  }
  for (int i = 36; i <= 45; ++i) {
    h.record(at(std::chrono::seconds(i), 35));
  }
  auto steps = h.steps(10s, 60s);
  // Newest sample at 45 s: steps end at 45, 35, 25, 15, 5; the one ending at -5 has no data.
  ASSERT_EQ(steps.size(), 5u);
  EXPECT_DOUBLE_EQ(steps.back().seconds_ago, 0);
  EXPECT_EQ(steps.back().requests, 0u);
  EXPECT_DOUBLE_EQ(steps[3].seconds_ago, 10);
  EXPECT_EQ(steps[3].requests, 10u);
  EXPECT_DOUBLE_EQ(steps[0].seconds_ago, 40);
  EXPECT_EQ(steps[0].requests, 5u) << "the first step is partial: samples from 0 s to 5 s";
  std::uint64_t sum = 0;
  for (const auto& s : steps) {
    sum += s.requests;
    EXPECT_EQ(s.bytes_down, s.requests * 100);
  }
  EXPECT_EQ(sum, 35u) << "every request counted exactly once";
}

TEST(TrafficHistory, RingKeepsTheNewestAndACounterResetIsNotNegative) {
  traffic_history h(4);
  for (int i = 0; i < 10; ++i) {
    h.record(at(std::chrono::seconds(i), 1000 + static_cast<std::uint64_t>(i)));
  }
  EXPECT_EQ(h.size(), 4u);
  EXPECT_EQ(h.newest().requests, 1009u);
  h.record(at(10s, 3));  // a restart of the counters
  EXPECT_EQ(h.recent(1s).requests, 0u);
}

}  // namespace
}  // namespace exitpool::admin
