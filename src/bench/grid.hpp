#pragma once
// `exitpool bench`: the grid of (threads x requests in flight) and the advice read from it.
// Pure functions, no I/O, no clock: the measured cells come in, the verdict goes out, so the
// rule is unit-tested on made-up grids (tests/unit/bench/grid_test.cpp). Any thread.
//
// The lesson behind it: a client that spends its time *waiting* (on the network, the
// gateway, a slow origin) goes faster with more requests in flight on the same thread
// (concurrency); a client that spends its time *computing* (receiving and copying large
// bodies, TLS, parsing) goes faster only with more threads on more cores (parallelism).
// The grid measures both levers, and advise() says which one moved req/s.
//
// "In flight" is the total over all threads (as `fetch --concurrency`): a cell with more
// threads than requests in flight would leave threads idle and is not run.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace exitpool::bench {

// Bounds on what one invocation may ask for (validated before anything runs).
struct grid_bounds {
  static constexpr int max_threads = 128;
  static constexpr int max_inflight = 10000;
  static constexpr std::size_t max_values = 12;              // per list
  static constexpr double min_duration_s = 0.1;              // per cell
  static constexpr double max_duration_s = 300;              // per cell
  static constexpr double max_total_s = 3600;                // cells x duration
  static constexpr std::uint64_t max_requests = 10'000'000;  // per cell: the count bound of the load loop
};

// A comma-separated list of whole numbers in [lo, hi], each at most once, at most
// grid_bounds::max_values of them; sorted ascending. `error` names the offending value
// ("'x' is not a whole number", "'0' is out of range 1..128", "'4' is listed twice").
struct int_list {
  std::vector<int> values;
  std::string error;  // empty on success
};
int_list parse_int_list(std::string_view text, int lo, int hi);

// Empty, or why the grid may not run (duration out of range, too long in total).
std::string check_grid(std::span<const int> threads, std::span<const int> inflight, double duration_s);

// What one cell measured.
struct cell {
  int threads = 0;
  int inflight = 0;                      // total, all threads together
  bool ran = false;                      // false: skipped (fewer in flight than threads)
  std::uint64_t ok = 0;                  // responses with a status below 400
  std::uint64_t errors = 0;              // transport errors, pool refusals, statuses >= 400
  std::uint64_t unfinished = 0;          // still in flight when the cell's time was up (not counted above)
  double seconds = 0;                    // from the start to the last completion (the measuring window)
  double cpu_seconds = 0;                // the process's user + system CPU over the cell
  std::uint64_t p50_us = 0, p99_us = 0;  // latency of the ok responses
  std::string first_error;               // the first error's text, for the report

  double rps() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
  // Client CPU per finished request (ok or error), microseconds; 0 when none finished.
  double cpu_us_per_request() const;
  // Cores the client kept busy on average (CPU seconds per second of the window).
  double cores() const { return seconds > 0 ? cpu_seconds / seconds : 0; }
};

// The cells to run, row by row (threads ascending, then in flight ascending), with `ran`
// false and nothing measured; cells with fewer in flight than threads are included (skipped).
std::vector<cell> plan_grid(std::span<const int> threads, std::span<const int> inflight);

// What bounds the workload, as the grid shows it.
enum class bound {
  waiting,  // more in flight on the fewest threads reached the best: concurrency
  cpu,      // only more threads reached the best: parallelism
  both,     // more threads, and more in flight per thread on top
  flat,     // the smallest setting is as good as any: the limit is elsewhere (origin, gateway, a cap)
  failed,   // no cell qualified (errors, or nothing finished)
};
std::string_view bound_name(bound b);

struct advice {
  bound b = bound::failed;
  int threads = 0;  // the setting to use (0 when failed)
  int inflight = 0;
  double rps = 0;       // what that setting measured
  double best_rps = 0;  // the best cell's req/s
  std::string text;     // one line for people
};

// The rule (tolerance 0.05 by default):
//  1. A cell qualifies when it ran, had an ok response, and at most 1% of its finished
//     requests were errors (a setting that breaks the target is no setting to use).
//  2. best = the highest req/s of the qualifying cells.
//  3. The setting: the cheapest qualifying cell within `tolerance` of best: fewest threads
//     first (a thread costs a core), then fewest in flight (a request in flight costs a
//     socket and a little memory). Measurement noise of a few percent cannot make it pick
//     a costlier cell than one that is as good.
//  4. The verdict: threads helped when the setting has more threads than the fewest that
//     qualified. More in flight helped when, on the fewest threads (only the number in flight
//     changes there) or on the setting's own thread count, the cheapest cell within
//     `tolerance` of that row's best has more in flight than the row's fewest. Both: `both`;
//     threads only: `cpu`; in flight only: `waiting`; neither: `flat`.
advice advise(std::span<const cell> cells, double tolerance = 0.05);

}  // namespace exitpool::bench
