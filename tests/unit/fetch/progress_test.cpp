#include "fetch/progress.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "proto/pool_line.hpp"

namespace exitpool::fetch {
namespace {

using namespace std::chrono_literals;

TEST(fmt_duration, minutes_hours_and_unknown) {
  EXPECT_EQ(fmt_duration(0), "0:00");
  EXPECT_EQ(fmt_duration(65.4), "1:05");
  EXPECT_EQ(fmt_duration(3723), "1:02:03");
  EXPECT_EQ(fmt_duration(-1), "--:--");
  EXPECT_EQ(fmt_duration(std::numeric_limits<double>::infinity()), "--:--");
}

TEST(progress_meter, rate_is_smoothed_and_eta_needs_a_total) {
  const auto t0 = pool::time_point{} + 1h;
  progress_meter m(1000, t0);
  EXPECT_EQ(m.line({.done = 100, .processed = 100, .errors = 2, .retries = 3, .inflight = 4}, t0 + 1s),
            "fetch: 100/1000 (10.0%)  100/s  errors 2  retries 3  in flight 4  ETA 0:09");
  // 0.7 * 100 + 0.3 * 200
  EXPECT_EQ(m.line({.done = 300, .processed = 300}, t0 + 2s),
            "fetch: 300/1000 (30.0%)  130/s  errors 0  retries 0  in flight 0  ETA 0:05");
  progress_meter unknown(std::nullopt, t0);
  EXPECT_EQ(unknown.line({.done = 5, .processed = 7}, t0 + 1s),
            "fetch: 7 done  5/s  errors 0  retries 0  in flight 0  ETA --:--");
}

TEST(count_result, by_status_errors_and_done) {
  shard_counters c;
  result_tally t;
  fetch_result ok;
  ok.status = 200;
  ok.exit_id = "d1";
  count_result(ok, c, t);
  fetch_result banned = ok;
  banned.status = 429;
  banned.error = "status 429 (ban)";
  count_result(banned, c, t);
  fetch_result refused;
  refused.exit_id = "d1";
  refused.error = "Couldn't connect to server";
  count_result(refused, c, t);
  fetch_result no_exit;
  no_exit.error = "no exit matches country=zz";
  count_result(no_exit, c, t);
  EXPECT_EQ(c.done.load(), 4u);
  EXPECT_EQ(c.errors.load(), 3u);
  EXPECT_EQ(t.by_status, (std::map<long, std::uint64_t>{{0, 2}, {200, 1}, {429, 1}}));
  EXPECT_EQ(t.no_exit, 1u);
}

TEST(summary_lines, counts_by_status_and_by_exit) {
  auto snap = pool::snapshot::build(proto::parse_pool_text("direct:// id=d1\ndirect:// id=d2\n", "<test>"), nullptr,
                                    pool::limits_config{});
  result_tally a;
  a.by_status = {{200, 3}, {0, 1}};
  a.by_exit = {0, 4};
  a.latency.add(1000);
  result_tally total;
  total.merge(a);
  run_totals t{.done = 4, .errors = 1, .retries = 2, .skipped = 5, .elapsed_s = 2, .peak_rss_mib = 7};
  const auto lines = summary_lines(t, total, *snap);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "fetch: 4 results in 2.00 s (2/s), 1 with an error, 2 retries; 5 skipped (already in the output or "
            "duplicates)");
  EXPECT_EQ(lines[1], "fetch: by status: error:1 200:3");
  EXPECT_EQ(lines[2], "fetch: by exit: d2:4");
  EXPECT_EQ(lines[3].rfind("fetch: latency ms: p50 1.", 0), 0u) << lines[3];
  EXPECT_NE(lines[3].find("(peak RSS 7 MiB)"), std::string::npos);
}

}  // namespace
}  // namespace exitpool::fetch
