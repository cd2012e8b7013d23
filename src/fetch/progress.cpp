#include "fetch/progress.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace exitpool::fetch {

void result_tally::merge(const result_tally& o) {
  for (auto [k, v] : o.by_status) {
    by_status[k] += v;
  }
  by_exit.resize(std::max(by_exit.size(), o.by_exit.size()), 0);
  for (std::size_t i = 0; i < o.by_exit.size(); ++i) {
    by_exit[i] += o.by_exit[i];
  }
  no_exit += o.no_exit;
  latency.merge(o.latency);
}

void count_result(const fetch_result& r, shard_counters& c, result_tally& t) {
  if (r.status != 0) {
    ++t.by_status[r.status];
  } else if (r.exit_id.empty()) {
    ++t.no_exit;
  }
  if (!r.error.empty()) {
    c.errors.fetch_add(1, std::memory_order_relaxed);
    if (r.status == 0) {
      ++t.by_status[0];
    }
  }
  c.done.fetch_add(1, std::memory_order_relaxed);
}

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) {
    return "--:--";
  }
  const auto t = static_cast<long long>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{}:{:02}", t / 60, t % 60);
}

std::string progress_meter::line(const progress_sample& s, pool::time_point now) {
  const double dt = std::chrono::duration<double>(now - last_t_).count();
  const double inst = dt > 0 ? static_cast<double>(s.done - last_done_) / dt : 0;
  rate_ = rate_ == 0 ? inst : 0.7 * rate_ + 0.3 * inst;
  last_done_ = s.done;
  last_t_ = now;
  const std::string where = total_ ? fmt::format("{}/{} ({:.1f}%)", s.processed, *total_,
                                                 100.0 * static_cast<double>(s.processed) /
                                                     static_cast<double>(std::max<std::uint64_t>(1, *total_)))
                                   : fmt::format("{} done", s.processed);
  const std::string eta = total_ && rate_ > 0
                              ? fmt_duration(static_cast<double>(*total_ - std::min(*total_, s.processed)) / rate_)
                              : "--:--";
  return fmt::format("fetch: {}  {:.0f}/s  errors {}  retries {}  in flight {}  ETA {}", where, rate_, s.errors,
                     s.retries, s.inflight, eta);
}

std::vector<std::string> summary_lines(const run_totals& t, const result_tally& tally, const pool::snapshot& snap) {
  std::string status_line;
  for (auto [k, v] : tally.by_status) {
    status_line += fmt::format(" {}:{}", k == 0 ? std::string("error") : std::to_string(k), v);
  }
  std::string exit_line;
  for (std::size_t i = 0; i < tally.by_exit.size() && i < snap.size(); ++i) {
    if (tally.by_exit[i] > 0) {
      exit_line += fmt::format(" {}:{}", snap.exits()[i]->id(), tally.by_exit[i]);
    }
  }
  const auto& h = tally.latency;
  return {
      fmt::format("fetch: {} results in {:.2f} s ({:.0f}/s), {} with an error, {} retries; {} skipped "
                  "(already in the output or duplicates)",
                  t.done, t.elapsed_s, t.elapsed_s > 0 ? static_cast<double>(t.done) / t.elapsed_s : 0.0, t.errors,
                  t.retries, t.skipped),
      fmt::format("fetch: by status:{}", status_line.empty() ? " -" : status_line),
      fmt::format("fetch: by exit:{}", exit_line.empty() ? " -" : exit_line),
      fmt::format("fetch: latency ms: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  (peak RSS {} MiB)",
                  static_cast<double>(h.quantile(0.5)) / 1000.0, static_cast<double>(h.quantile(0.9)) / 1000.0,
                  static_cast<double>(h.quantile(0.99)) / 1000.0, t.peak_rss_mib),
  };
}

}  // namespace exitpool::fetch
