#include "pool/rate_limit.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "pool/pool.hpp"
#include "pool/sticky.hpp"

namespace exitpool::pool {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + 1000h;

proto::exit_spec spec(std::string id) {
  proto::exit_spec s;
  s.scheme = proto::exit_scheme::http;
  s.host = "10.0.0.1";
  s.port = 8080;
  s.id = std::move(id);
  return s;
}

// ---- token_bucket -----------------------------------------------------------------------------

TEST(TokenBucket, FivePerSecondBurstOneOverThreeSeconds) {
  token_bucket b(5, 1);
  int per_second[3] = {0, 0, 0};
  // Hammer every millisecond for 3 simulated seconds.
  for (auto t = 0ms; t < 3s; t += 1ms) {
    if (b.try_take(t0 + t)) {
      ++per_second[t / 1s];
    }
  }
  EXPECT_EQ(per_second[0], 5);
  EXPECT_EQ(per_second[1], 5);
  EXPECT_EQ(per_second[2], 5);
}

TEST(TokenBucket, EvenlySpacedWithBurstOne) {
  token_bucket b(5, 1);
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_FALSE(b.try_take(t0));
  EXPECT_FALSE(b.try_take(t0 + 199ms));
  EXPECT_EQ(b.next_available(t0 + 100ms), t0 + 200ms);
  EXPECT_TRUE(b.try_take(t0 + 200ms));
  EXPECT_FALSE(b.available(t0 + 399ms));
  EXPECT_TRUE(b.available(t0 + 400ms));
}

TEST(TokenBucket, BurstAfterIdle) {
  token_bucket b(5, 3);
  EXPECT_DOUBLE_EQ(b.rate(), 5.0);
  EXPECT_DOUBLE_EQ(b.burst(), 3.0);
  // A full bucket: three back to back, then one per 200 ms.
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_FALSE(b.try_take(t0));
  EXPECT_EQ(b.next_available(t0), t0 + 200ms);
  EXPECT_TRUE(b.try_take(t0 + 200ms));
  EXPECT_FALSE(b.try_take(t0 + 200ms));
  // Idle long enough to refill: three again, never more.
  EXPECT_TRUE(b.try_take(t0 + 10s));
  EXPECT_TRUE(b.try_take(t0 + 10s));
  EXPECT_TRUE(b.try_take(t0 + 10s));
  EXPECT_FALSE(b.try_take(t0 + 10s));
  // Over one second from full: burst + rate tokens.
  int taken = 0;
  for (std::chrono::milliseconds t = 20s; t < 21s; t += 1ms) {
    taken += b.try_take(t0 + t) ? 1 : 0;
  }
  EXPECT_EQ(taken, 3 + 4);  // 3 at once, then at +200, +400, +600, +800 ms
}

TEST(TokenBucket, RefundGivesTheTokenBack) {
  token_bucket b(1, 1);
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_FALSE(b.available(t0));
  b.refund();
  EXPECT_TRUE(b.available(t0));
  EXPECT_TRUE(b.try_take(t0));
}

TEST(TokenBucket, UnlimitedWhenRateIsZero) {
  token_bucket b;
  EXPECT_FALSE(b.limited());
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(b.try_take(t0));
  }
  EXPECT_EQ(b.next_available(t0), t0);
  b.configure(2, 1);
  EXPECT_TRUE(b.limited());
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_FALSE(b.try_take(t0));
  b.configure(0, 1);
  EXPECT_TRUE(b.try_take(t0));
}

TEST(TokenBucket, ThreadsAtOneInstantGetExactlyTheBurst) {
  token_bucket b(100, 7);
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        taken.fetch_add(b.try_take(t0) ? 1 : 0, std::memory_order_relaxed);
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(taken.load(), 7);
}

TEST(TokenBucket, ThreadsHammeringNeverExceedTheRate) {
  // 4 threads each walk the same simulated second (in 50 us steps, so their clocks
  // interleave arbitrarily) and take whatever they can.
  const double rate = 200;
  const int burst = 5;
  token_bucket b(rate, burst);
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      int mine = 0;
      for (auto d = 0us; d < 1s; d += 50us) {
        for (int k = 0; k < 3; ++k) {
          mine += b.try_take(t0 + d) ? 1 : 0;
        }
      }
      taken.fetch_add(mine);
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  // Over a window W: at most burst + rate * W.
  EXPECT_LE(taken.load(), burst + static_cast<int>(rate));
  EXPECT_GE(taken.load(), static_cast<int>(rate) - 1);
}

// ---- host_limits ------------------------------------------------------------------------------

TEST(HostLimits, PerExitAndHost) {
  exit a(spec("a"), 0);
  exit b(spec("b"), 1);
  host_limits hl(2, 1);
  EXPECT_TRUE(hl.limited());
  EXPECT_TRUE(hl.try_take(a, "x.com", t0));
  EXPECT_FALSE(hl.try_take(a, "x.com", t0));
  // Other host, other exit: their own buckets.
  EXPECT_TRUE(hl.try_take(a, "y.com", t0));
  EXPECT_TRUE(hl.try_take(b, "x.com", t0));
  EXPECT_EQ(hl.next_available(a, "x.com", t0), t0 + 500ms);
  EXPECT_EQ(hl.next_available(a, "z.com", t0), t0);
  EXPECT_TRUE(hl.try_take(a, "x.com", t0 + 500ms));
  // Refund.
  hl.refund(a, "x.com");
  EXPECT_TRUE(hl.try_take(a, "x.com", t0 + 500ms));
  // No host: no limit.
  EXPECT_TRUE(hl.try_take(a, "", t0));
  EXPECT_TRUE(hl.try_take(a, "", t0));
}

TEST(HostLimits, BatchPeek) {
  exit a(spec("a"), 0);
  exit b(spec("b"), 1);
  host_limits hl(1, 1);
  ASSERT_TRUE(hl.try_take(b, "x.com", t0));
  const std::uint64_t hashes[] = {a.id_hash(), b.id_hash()};
  time_point out[2];
  hl.next_available_many("x.com", hash64("x.com"), hashes, t0, out);
  EXPECT_EQ(out[0], t0);
  EXPECT_EQ(out[1], t0 + 1s);
}

TEST(HostLimits, IdleEntriesAreDroppedAndSizeIsBounded) {
  host_limits hl(10, 1, 64 * 4);  // 4 entries per stripe
  std::vector<std::unique_ptr<exit>> exits;
  for (int i = 0; i < 2000; ++i) {
    exits.push_back(std::make_unique<exit>(spec("e" + std::to_string(i)), i));
    EXPECT_TRUE(hl.try_take(*exits.back(), "host" + std::to_string(i % 300), t0));
  }
  EXPECT_LE(hl.size(), 64u * 4u);
  // 100 ms later every bucket is full again: nothing worth keeping.
  EXPECT_EQ(hl.sweep(t0 + 100ms), 0u);
}

TEST(HostLimits, OffWhenRateIsZero) {
  exit a(spec("a"), 0);
  host_limits hl(limits_config{});
  EXPECT_FALSE(hl.limited());
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(hl.try_take(a, "x.com", t0));
  }
  EXPECT_EQ(hl.size(), 0u);
}

}  // namespace
}  // namespace exitpool::pool
