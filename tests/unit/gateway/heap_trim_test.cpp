// burst_trim: trims once a burst of TLS handshakes is over, not during it, not for a few, not too often.
#include "gateway/heap_trim.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace exitpool::gateway {
namespace {

using namespace std::chrono_literals;
using clock = burst_trim::clock;

// One tick: the handshake count then, seconds since the start, and whether it should trim.
struct tick_case {
  std::uint64_t handshakes;
  int at_s;
  bool trims;
};

void expect_ticks(burst_trim& t, const std::vector<tick_case>& ticks) {
  const auto t0 = clock::time_point{} + 1h;
  for (const auto& c : ticks) {
    EXPECT_EQ(t.tick(c.handshakes, t0 + std::chrono::seconds(c.at_s)), c.trims)
        << c.handshakes << " handshakes at " << c.at_s << " s";
  }
}

TEST(BurstTrim, TrimsOnlyOnceABurstIsOverAndNotTooOften) {
  const struct {
    const char* what;
    std::vector<tick_case> ticks;
  } scenarios[] = {
      {"handshakes still ending: the burst goes on; a quiet tick after 300: trim, once; nothing new since",
       {{0, 0, false}, {150, 1, false}, {300, 2, false}, {300, 3, true}, {300, 4, false}, {300, 100, false}}},
      {"a few handshakes are no burst, but they add up",
       {{40, 0, false}, {40, 1, false}, {99, 2, false}, {99, 3, false}, {130, 4, false}, {130, 5, true}}},
      {"a second burst 2 s after the first trim waits until 10 s have passed",
       {{200, 0, false}, {200, 1, true}, {400, 2, false}, {400, 3, false}, {400, 10, false}, {400, 11, true}}},
  };
  for (const auto& s : scenarios) {
    SCOPED_TRACE(s.what);
    burst_trim t(100, 10s);
    expect_ticks(t, s.ticks);
  }
}

TEST(BurstTrim, TheSweepsTrimCountsAsOne) {
  burst_trim t(100, 10s);
  t.trimmed(500, clock::time_point{} + 1h);  // the minute sweep trimmed first
  expect_ticks(t, {{500, 1, false}, {500, 20, false}});
}

}  // namespace
}  // namespace exitpool::gateway
