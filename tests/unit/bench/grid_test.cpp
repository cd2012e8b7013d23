#include "bench/grid.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

namespace exitpool::bench {

namespace {

// A cell that ran for 1 s with `rps` ok responses per second and `errors` errors.
cell measured(int threads, int inflight, double rps, std::uint64_t errors = 0) {
  cell c;
  c.threads = threads;
  c.inflight = inflight;
  c.ran = true;
  c.seconds = 1.0;
  c.ok = static_cast<std::uint64_t>(rps);
  c.errors = errors;
  return c;
}

cell skipped(int threads, int inflight) {
  cell c;
  c.threads = threads;
  c.inflight = inflight;
  return c;
}

}  // namespace

TEST(parse_int_list, valid_lists_are_sorted) {
  auto l = parse_int_list("4,1,2", 1, 128);
  EXPECT_EQ(l.error, "");
  EXPECT_EQ(l.values, (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(parse_int_list("256", 1, 10000).values, std::vector<int>{256});
}

TEST(parse_int_list, bad_values_are_named) {
  struct row {
    const char* text;
    const char* error;
  };
  const row rows[] = {
      {"", "empty list (expected whole numbers separated by commas, e.g. 1,2,4)"},
      {"1,x", "'x' is not a whole number"},
      {"1,,2", "'' is not a whole number"},
      {"1,2,", "'' is not a whole number"},
      {"2.5", "'2.5' is not a whole number"},
      {" 1", "' 1' is not a whole number"},
      {"-1", "'-1' is out of range 1..128"},
      {"0,1", "'0' is out of range 1..128"},
      {"129", "'129' is out of range 1..128"},
      {"99999999999999999999", "'99999999999999999999' is out of range 1..128"},
      {"1,2,1", "'1' is listed twice"},
      {"1,2,3,4,5,6,7,8,9,10,11,12,13", "more than 12 values"},
  };
  for (const auto& r : rows) {
    const auto l = parse_int_list(r.text, 1, 128);
    EXPECT_EQ(l.error, r.error) << r.text;
    EXPECT_TRUE(l.values.empty()) << r.text;
  }
}

TEST(check_grid, bounds_duration_and_total) {
  const std::vector<int> t{1, 2, 4}, c{1, 16, 256};
  EXPECT_EQ(check_grid(t, c, 10), "");
  EXPECT_NE(check_grid(t, c, 0.05).find("--duration"), std::string::npos);
  EXPECT_NE(check_grid(t, c, 301).find("--duration"), std::string::npos);
  EXPECT_NE(check_grid(t, c, std::numeric_limits<double>::quiet_NaN()).find("--duration"), std::string::npos);  // NaN
  // 7 runnable cells (4 x 1 and 2 x 1 are skipped) x 300 s is within the hour; 12 x 12 x 300 is not.
  EXPECT_EQ(check_grid(t, c, 300), "");
  std::vector<int> many{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_NE(check_grid(many, many, 300).find("more than 3600 s"), std::string::npos);
  EXPECT_NE(check_grid(std::vector<int>{8}, std::vector<int>{1, 4}, 1).find("no cell to run"), std::string::npos);
}

TEST(plan_grid, row_by_row) {
  const auto g = plan_grid(std::vector<int>{1, 2}, std::vector<int>{1, 8});
  ASSERT_EQ(g.size(), 4u);
  EXPECT_EQ(g[1].threads, 1);
  EXPECT_EQ(g[1].inflight, 8);
  EXPECT_EQ(g[2].threads, 2);
  EXPECT_EQ(g[2].inflight, 1);
  EXPECT_FALSE(g[2].ran);
}

TEST(cell, derived_numbers) {
  cell c = measured(2, 4, 1000);
  c.cpu_seconds = 0.5;
  c.errors = 0;
  EXPECT_DOUBLE_EQ(c.rps(), 1000);
  EXPECT_DOUBLE_EQ(c.cpu_us_per_request(), 500);
  EXPECT_DOUBLE_EQ(c.cores(), 0.5);
  EXPECT_DOUBLE_EQ(cell{}.rps(), 0);
  EXPECT_DOUBLE_EQ(cell{}.cpu_us_per_request(), 0);
}

// A slow origin: one request in flight waits 100 ms; more in flight scale, more threads add nothing.
TEST(advise, waiting_bound_picks_more_in_flight_on_one_thread) {
  const std::vector<cell> g{measured(1, 1, 10), measured(1, 16, 158), measured(1, 256, 160),
                            skipped(2, 1),      measured(2, 16, 159), measured(2, 256, 163),
                            skipped(4, 1),      measured(4, 16, 161), measured(4, 256, 162)};
  const auto a = advise(g);
  EXPECT_EQ(a.b, bound::waiting);
  EXPECT_EQ(a.threads, 1);
  EXPECT_EQ(a.inflight, 16);  // cheapest within 5% of the best (163)
  EXPECT_DOUBLE_EQ(a.best_rps, 163);
  EXPECT_NE(a.text.find("concurrency"), std::string::npos);
  EXPECT_NE(a.text.find("--threads 1 --concurrency 16"), std::string::npos);
}

// A client that burns CPU per response: one thread is saturated at any depth, two threads double it.
TEST(advise, cpu_bound_picks_more_threads) {
  const std::vector<cell> g{measured(1, 2, 300), measured(1, 4, 305), measured(2, 2, 590), measured(2, 4, 600)};
  const auto a = advise(g);
  EXPECT_EQ(a.b, bound::cpu);
  EXPECT_EQ(a.threads, 2);
  EXPECT_EQ(a.inflight, 2);
  EXPECT_NE(a.text.find("parallelism"), std::string::npos);
}

TEST(advise, both_when_threads_and_depth_per_thread_help) {
  const std::vector<cell> g{measured(1, 1, 20),   measured(1, 16, 300),   measured(1, 256, 3000),
                            measured(2, 16, 310), measured(2, 256, 5600), measured(4, 256, 5700)};
  const auto a = advise(g);
  EXPECT_EQ(a.b, bound::both);
  EXPECT_EQ(a.threads, 2);
  EXPECT_EQ(a.inflight, 256);
}

// Measured (tiny answers from nginx on a loaded 2-core machine): in flight helps a lot on one
// thread, a second thread adds 6.5% more. The setting's row alone (2 threads: 16 and 64 in flight)
// would hide the first lever; the one-thread row shows it.
TEST(advise, in_flight_judged_on_the_fewest_threads_too) {
  const std::vector<cell> g{measured(1, 1, 10123), measured(1, 16, 14874), measured(1, 64, 14500),
                            skipped(2, 1),         measured(2, 16, 15835), measured(2, 64, 15101)};
  const auto a = advise(g);
  EXPECT_EQ(a.b, bound::both);
  EXPECT_EQ(a.threads, 2);
  EXPECT_EQ(a.inflight, 16);
}

TEST(advise, flat_when_the_smallest_setting_is_as_good) {
  const std::vector<cell> g{measured(1, 1, 1000), measured(1, 8, 1010), measured(2, 8, 1030)};
  const auto a = advise(g);
  EXPECT_EQ(a.b, bound::flat);
  EXPECT_EQ(a.threads, 1);
  EXPECT_EQ(a.inflight, 1);
}

TEST(advise, tolerance_is_the_margin) {
  const std::vector<cell> g{measured(1, 1, 100), measured(1, 8, 106)};
  EXPECT_EQ(advise(g).b, bound::waiting);  // 100 < 0.95 * 106 = 100.7
  EXPECT_EQ(advise(g, 0.10).b, bound::flat);
}

// A setting that makes errors is never advised, however fast: the gateway's limit at 256 in flight.
TEST(advise, cells_with_errors_do_not_qualify) {
  const std::vector<cell> g{measured(1, 1, 100), measured(1, 16, 1500, 2), measured(1, 256, 4000, 900)};
  const auto a = advise(g);
  EXPECT_EQ(a.b, bound::waiting);
  EXPECT_EQ(a.inflight, 16);  // 2 errors in 1502: under 1%
  EXPECT_DOUBLE_EQ(a.best_rps, 1500);
}

TEST(advise, failed_when_nothing_qualifies) {
  const std::vector<cell> g{measured(1, 1, 0, 50), skipped(2, 1), measured(1, 8, 10, 10)};
  const auto a = advise(g);
  EXPECT_EQ(a.b, bound::failed);
  EXPECT_EQ(a.threads, 0);
  EXPECT_NE(a.text.find("fix the errors"), std::string::npos);
  EXPECT_EQ(advise(std::vector<cell>{}).b, bound::failed);
}

TEST(advise, the_fewest_threads_is_the_fewest_that_qualified) {
  // The 1-thread row failed (an error each): threads 2 is then the baseline, not a lever.
  const std::vector<cell> g{measured(1, 4, 0, 20), measured(2, 4, 100), measured(2, 16, 400)};
  const auto a = advise(g);
  EXPECT_EQ(a.b, bound::waiting);
  EXPECT_EQ(a.threads, 2);
  EXPECT_EQ(a.inflight, 16);
}

TEST(bound_name, every_value) {
  EXPECT_EQ(bound_name(bound::waiting), "waiting");
  EXPECT_EQ(bound_name(bound::cpu), "cpu");
  EXPECT_EQ(bound_name(bound::both), "both");
  EXPECT_EQ(bound_name(bound::flat), "flat");
  EXPECT_EQ(bound_name(bound::failed), "failed");
}

}  // namespace exitpool::bench
