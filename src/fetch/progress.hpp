#pragma once
// What a fetch tells its user while it runs and at the end: per-shard counters, the
// progress line (done/total, rate, errors, retries, in flight, ETA) and the summary
// (counts by status and by exit, total-time percentiles). Formatting only: the caller
// prints. Time is a parameter.
//
// Threads: a shard writes its shard_counters (relaxed atomics) and its result_tally;
// the main thread reads the counters any time and the tallies after the shards joined.

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fetch/result.hpp"
#include "fetch/stats.hpp"
#include "pool/pool.hpp"

namespace exitpool::fetch {

struct shard_counters {
  alignas(64) std::atomic<std::uint64_t> done{0};  // result lines
  std::atomic<std::uint64_t> errors{0};            // result lines with an error
  std::atomic<std::uint64_t> retries{0};
  std::atomic<int> inflight{0};
  std::atomic<std::uint64_t> lines_written{0};  // result lines handed to write(2) (crawl: durability)
};

// A shard's results, for the summary.
struct result_tally {
  std::map<long, std::uint64_t> by_status;  // 0: no response, with an error
  std::vector<std::uint64_t> by_exit;       // by exit index: results whose last attempt used it
  std::uint64_t no_exit = 0;                // results without a response nor an exit
  latency_histogram latency;                // total time of the last attempt, µs

  void merge(const result_tally& o);
};

// Counts one result line.
void count_result(const fetch_result& r, shard_counters& c, result_tally& t);

// "1:02:03", "4:05"; "--:--" when unknown.
std::string fmt_duration(double seconds);

struct progress_sample {
  std::uint64_t done = 0;       // result lines
  std::uint64_t processed = 0;  // input lines dealt with: done, skipped, ignored
  std::uint64_t errors = 0;
  std::uint64_t retries = 0;
  int inflight = 0;
};

// The progress line: rate smoothed between calls, ETA when the input's size is known.
class progress_meter {
 public:
  progress_meter(std::optional<std::uint64_t> total_lines, pool::time_point start)
      : total_(total_lines), last_t_(start) {}
  std::string line(const progress_sample& s, pool::time_point now);

 private:
  std::optional<std::uint64_t> total_;
  std::uint64_t last_done_ = 0;
  pool::time_point last_t_;
  double rate_ = 0;
};

struct run_totals {
  std::uint64_t done = 0, errors = 0, retries = 0, skipped = 0;
  double elapsed_s = 0;
  long peak_rss_mib = 0;
};

// The end-of-run summary, one string per line (no newlines).
std::vector<std::string> summary_lines(const run_totals& t, const result_tally& tally, const pool::snapshot& snap);

}  // namespace exitpool::fetch
