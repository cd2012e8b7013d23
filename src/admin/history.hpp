#pragma once
// The dashboard's last hour of traffic, kept in the process (no external TSDB).
//
// A sampler on the admin thread (admin/server.hpp: history_sampler) sums the shards'
// counters once a second (`aggregate`, the same read a scrape does: no per-request
// cost) and records the cumulative totals here; the dashboard asks for the hour as
// per-step deltas and for the recent rates.
//
// Pure: no I/O, no clock read (time is an argument). Not thread-safe: the sampler and
// the admin requests that read it run on the same thread (the admin thread's io_context).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "admin/metrics.hpp"

namespace exitpool::admin {

// Cumulative totals at one instant (counters only grow; a delta is a difference).
struct traffic_sample {
  std::chrono::steady_clock::time_point at{};
  std::uint64_t requests = 0;  // every outcome, every protocol
  std::uint64_t errors = 0;    // requests whose outcome was not ok
  std::uint64_t bytes_up = 0;  // client → upstream
  std::uint64_t bytes_down = 0;
  std::uint64_t dial_failures = 0;
  std::uint64_t bans = 0;
};

// The sample of a scrape's sums.
traffic_sample sample_of(const metrics_totals& t, std::chrono::steady_clock::time_point at);

// What happened during one step of the history (differences of two samples).
struct traffic_step {
  double seconds_ago = 0;  // end of the step, before the newest sample
  double seconds = 0;      // its length (0 for a step with no data)
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::uint64_t bytes_up = 0;
  std::uint64_t bytes_down = 0;
  std::uint64_t dial_failures = 0;
  std::uint64_t bans = 0;
};

class traffic_history {
 public:
  // Keeps the last `capacity` samples (3600 at one a second: an hour, ~200 KiB).
  explicit traffic_history(std::size_t capacity = 3600);

  void record(const traffic_sample& s);
  std::size_t size() const { return size_; }
  // The newest sample; precondition: size() > 0.
  const traffic_sample& newest() const { return at(size_ - 1); }

  // Per-step deltas over the last `span`, oldest first, `step` long each, aligned on
  // the newest sample. Steps before the first sample are left out.
  std::vector<traffic_step> steps(std::chrono::seconds step, std::chrono::seconds span) const;

  // The change over the last `window` (from the newest sample back to the newest one at
  // least `window` older, or the oldest kept); zeros with fewer than two samples.
  traffic_step recent(std::chrono::seconds window) const;

 private:
  const traffic_sample& at(std::size_t i) const { return ring_[(head_ + i) % ring_.size()]; }
  // The oldest kept sample taken at or after `t` (index), or size_ when none.
  std::size_t first_at_or_after(std::chrono::steady_clock::time_point t) const;

  std::vector<traffic_sample> ring_;
  std::size_t head_ = 0;  // index in ring_ of the oldest sample
  std::size_t size_ = 0;
};

}  // namespace exitpool::admin
