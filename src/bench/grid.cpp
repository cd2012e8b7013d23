#include "bench/grid.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "proto/text.hpp"

namespace exitpool::bench {

int_list parse_int_list(std::string_view text, int lo, int hi) {
  int_list out;
  if (text.empty()) {
    out.error = "empty list (expected whole numbers separated by commas, e.g. 1,2,4)";
    return out;
  }
  std::size_t pos = 0;
  for (;;) {
    const std::size_t comma = text.find(',', pos);
    const std::string_view item = text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos);
    int v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec == std::errc::invalid_argument || end != item.data() + item.size()) {
      out.error = fmt::format("'{}' is not a whole number", proto::clip(item, 32));
      out.values.clear();
      return out;
    }
    if (ec == std::errc::result_out_of_range || v < lo || v > hi) {
      out.error = fmt::format("'{}' is out of range {}..{}", proto::clip(item, 32), lo, hi);
      out.values.clear();
      return out;
    }
    if (std::find(out.values.begin(), out.values.end(), v) != out.values.end()) {
      out.error = fmt::format("'{}' is listed twice", v);
      out.values.clear();
      return out;
    }
    out.values.push_back(v);
    if (out.values.size() > grid_bounds::max_values) {
      out.error = fmt::format("more than {} values", grid_bounds::max_values);
      out.values.clear();
      return out;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    pos = comma + 1;
  }
  std::sort(out.values.begin(), out.values.end());
  return out;
}

std::string check_grid(std::span<const int> threads, std::span<const int> inflight, double duration_s) {
  if (!(duration_s >= grid_bounds::min_duration_s && duration_s <= grid_bounds::max_duration_s)) {
    return fmt::format("--duration {}: expected {} to {} seconds per cell", duration_s, grid_bounds::min_duration_s,
                       grid_bounds::max_duration_s);
  }
  std::size_t runnable = 0;
  for (const int t : threads) {
    runnable +=
        static_cast<std::size_t>(std::count_if(inflight.begin(), inflight.end(), [t](int c) { return c >= t; }));
  }
  if (runnable == 0) {
    return "no cell to run: every --concurrency value is below every --threads value (in flight is the total over "
           "all threads)";
  }
  if (static_cast<double>(runnable) * duration_s > grid_bounds::max_total_s) {
    return fmt::format("{} cells x {} s is more than {} s in all: fewer values or a shorter --duration", runnable,
                       duration_s, grid_bounds::max_total_s);
  }
  return {};
}

double cell::cpu_us_per_request() const {
  const std::uint64_t n = ok + errors;
  return n > 0 ? cpu_seconds * 1e6 / static_cast<double>(n) : 0;
}

std::vector<cell> plan_grid(std::span<const int> threads, std::span<const int> inflight) {
  std::vector<cell> out;
  out.reserve(threads.size() * inflight.size());
  for (const int t : threads) {
    for (const int c : inflight) {
      cell x;
      x.threads = t;
      x.inflight = c;
      out.push_back(x);
    }
  }
  return out;
}

std::string_view bound_name(bound b) {
  switch (b) {
    case bound::waiting:
      return "waiting";
    case bound::cpu:
      return "cpu";
    case bound::both:
      return "both";
    case bound::flat:
      return "flat";
    case bound::failed:
      break;
  }
  return "failed";
}

namespace {

bool qualifies(const cell& c) {
  const std::uint64_t finished = c.ok + c.errors;
  return c.ran && c.ok > 0 && c.seconds > 0 && c.errors * 100 <= finished;
}

// Cheaper first: fewer threads, then fewer in flight.
bool cheaper(const cell& a, const cell& b) {
  return a.threads != b.threads ? a.threads < b.threads : a.inflight < b.inflight;
}

// The cheapest of `cells` whose req/s is within `tolerance` of the best of them; null when empty.
const cell* cheapest_near_best(const std::vector<const cell*>& cells, double tolerance) {
  double best = 0;
  for (const cell* c : cells) {
    best = std::max(best, c->rps());
  }
  const cell* pick = nullptr;
  for (const cell* c : cells) {
    if (c->rps() >= best * (1 - tolerance) && (pick == nullptr || cheaper(*c, *pick))) {
      pick = c;
    }
  }
  return pick;
}

// Whether more in flight helped within one row (one thread count): its cheapest cell near
// the row's best has more in flight than the row's fewest.
bool inflight_helped_in_row(const std::vector<const cell*>& ok, int threads, double tolerance) {
  std::vector<const cell*> row;
  for (const cell* c : ok) {
    if (c->threads == threads) {
      row.push_back(c);
    }
  }
  const cell* near = cheapest_near_best(row, tolerance);
  const auto fewest =
      std::min_element(row.begin(), row.end(), [](const cell* a, const cell* b) { return a->inflight < b->inflight; });
  return near != nullptr && near->inflight > (*fewest)->inflight;
}

}  // namespace

advice advise(std::span<const cell> cells, double tolerance) {
  advice out;
  std::vector<const cell*> ok;
  for (const auto& c : cells) {
    if (qualifies(c)) {
      ok.push_back(&c);
    }
  }
  if (ok.empty()) {
    out.text = "no cell qualified (each had no successful response or more than 1% errors): fix the errors first";
    return out;
  }
  const cell* pick = cheapest_near_best(ok, tolerance);
  const cell* best =
      *std::max_element(ok.begin(), ok.end(), [](const cell* a, const cell* b) { return a->rps() < b->rps(); });
  int fewest_threads = pick->threads;
  for (const cell* c : ok) {
    fewest_threads = std::min(fewest_threads, c->threads);
  }
  const bool threads_helped = pick->threads > fewest_threads;
  // On the fewest threads (the clean experiment: only the number in flight changes), or on
  // the setting's own row.
  const bool inflight_helped =
      inflight_helped_in_row(ok, fewest_threads, tolerance) || inflight_helped_in_row(ok, pick->threads, tolerance);
  out.b = threads_helped && inflight_helped ? bound::both
          : threads_helped                  ? bound::cpu
          : inflight_helped                 ? bound::waiting
                                            : bound::flat;
  out.threads = pick->threads;
  out.inflight = pick->inflight;
  out.rps = pick->rps();
  out.best_rps = best->rps();
  const char* why = "";
  switch (out.b) {
    case bound::waiting:
      why = "bound by waiting: more in flight helps (concurrency), more threads do not";
      break;
    case bound::cpu:
      why = "bound by CPU: more threads help (parallelism), more in flight does not";
      break;
    case bound::both:
      why = "bound by CPU and waiting: more threads help (parallelism), and more in flight too (concurrency)";
      break;
    default:
      why = "neither more threads nor more in flight helped: the limit is elsewhere (origin, gateway, a cap)";
      break;
  }
  out.text = fmt::format("{}; use --threads {} --concurrency {} ({:.0f} req/s, the best was {:.0f})", why, out.threads,
                         out.inflight, out.rps, out.best_rps);
  return out;
}

}  // namespace exitpool::bench
