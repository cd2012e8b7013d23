#include "admin/history.hpp"

#include <algorithm>

namespace exitpool::admin {

namespace {

using clock_t_ = std::chrono::steady_clock;

traffic_step delta(const traffic_sample& from, const traffic_sample& to, clock_t_::time_point newest) {
  // Counters only grow; a difference below zero would mean a restart, shown as nothing.
  auto d = [](std::uint64_t a, std::uint64_t b) { return b >= a ? b - a : 0; };
  traffic_step s;
  s.seconds_ago = std::chrono::duration<double>(newest - to.at).count();
  s.seconds = std::chrono::duration<double>(to.at - from.at).count();
  s.requests = d(from.requests, to.requests);
  s.errors = d(from.errors, to.errors);
  s.bytes_up = d(from.bytes_up, to.bytes_up);
  s.bytes_down = d(from.bytes_down, to.bytes_down);
  s.dial_failures = d(from.dial_failures, to.dial_failures);
  s.bans = d(from.bans, to.bans);
  return s;
}

}  // namespace

traffic_sample sample_of(const metrics_totals& t, clock_t_::time_point at) {
  traffic_sample s;
  s.at = at;
  for (std::size_t p = 0; p < client_protocol_count; ++p) {
    for (std::size_t o = 0; o < request_outcome_count; ++o) {
      s.requests += t.requests[p][o];
      if (o != static_cast<std::size_t>(request_outcome::ok)) {
        s.errors += t.requests[p][o];
      }
    }
  }
  s.bytes_up = t.bytes_client_to_upstream;
  s.bytes_down = t.bytes_upstream_to_client;
  for (auto f : t.dial_failures) {
    s.dial_failures += f;
  }
  s.bans = t.bans;
  return s;
}

traffic_history::traffic_history(std::size_t capacity) : ring_(std::max<std::size_t>(capacity, 2)) {}

void traffic_history::record(const traffic_sample& s) {
  if (size_ < ring_.size()) {
    ring_[(head_ + size_) % ring_.size()] = s;
    ++size_;
    return;
  }
  ring_[head_] = s;  // overwrite the oldest
  head_ = (head_ + 1) % ring_.size();
}

std::size_t traffic_history::first_at_or_after(clock_t_::time_point t) const {
  // Samples are in time order: binary search over the ring's logical indices.
  std::size_t lo = 0;
  std::size_t hi = size_;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (at(mid).at < t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

std::vector<traffic_step> traffic_history::steps(std::chrono::seconds step, std::chrono::seconds span) const {
  std::vector<traffic_step> out;
  if (size_ < 2 || step.count() <= 0) {
    return out;
  }
  const auto newest_at = newest().at;
  const auto n = static_cast<std::size_t>(span / step);
  out.reserve(n);
  for (std::size_t k = n; k-- > 0;) {
    const auto end_t = newest_at - step * static_cast<std::int64_t>(k);
    // Each boundary is the first sample at or after it, so consecutive steps share a
    // sample and every increment lands in exactly one step.
    const std::size_t b = first_at_or_after(end_t - step);
    const std::size_t e = std::min(first_at_or_after(end_t), size_ - 1);
    if (b >= e) {
      continue;  // before the first sample, or a gap in the samples
    }
    traffic_step s = delta(at(b), at(e), newest_at);
    s.seconds_ago = std::chrono::duration<double>(newest_at - end_t).count();
    out.push_back(s);
  }
  return out;
}

traffic_step traffic_history::recent(std::chrono::seconds window) const {
  if (size_ < 2) {
    return {};
  }
  const auto& last = newest();
  std::size_t i = first_at_or_after(last.at - window);
  if (i > 0 && at(i).at > last.at - window) {
    --i;  // the newest sample at least `window` older, when there is one
  }
  if (i >= size_ - 1) {
    i = size_ - 2;
  }
  return delta(at(i), last, last.at);
}

}  // namespace exitpool::admin
