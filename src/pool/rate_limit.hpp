#pragma once
// Rate limits for exits: a lock-free token bucket (GCRA) and per (exit, target host)
// buckets. Pure decisions; time is an input.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>

#include "pool/clock.hpp"
#include "pool/expiring_map.hpp"

namespace exitpool::pool {

class exit;

// Token bucket as a generic cell rate algorithm: one atomic holds the "theoretical
// arrival time" (TAT) of the next request in ns. A take at `now` succeeds when
// TAT - now <= (burst - 1) / rate, and then moves TAT to max(TAT, now) + 1 / rate.
// Sustained rate `rate` per second; up to `burst` back to back after an idle spell.
//
// Any thread: try_take is a CAS loop on that one atomic, no lock. Times from
// different threads need not be monotonic: a take with an older `now` just sees
// less room. A bucket with rate <= 0 is unlimited (every take succeeds).
class token_bucket {
 public:
  token_bucket() = default;
  token_bucket(double rate_per_s, double burst) { configure(rate_per_s, burst); }
  token_bucket(const token_bucket&) = delete;
  token_bucket& operator=(const token_bucket&) = delete;

  // rate_per_s <= 0: unlimited. burst < 1 counts as 1. Any thread; a reconfigure
  // keeps the current TAT (tokens already spent stay spent).
  void configure(double rate_per_s, double burst);
  bool limited() const { return interval_ns_.load(std::memory_order_relaxed) > 0; }
  double rate() const;
  double burst() const;

  // Takes one token if one is free at `now`.
  bool try_take(time_point now);
  // Whether try_take(now) would succeed (a peek: takes nothing).
  bool available(time_point now) const { return next_available(now) <= now; }
  // The earliest time a token is free: `now` when one is free now.
  time_point next_available(time_point now) const;
  // Gives back one token taken by a successful try_take (undo when a later step of
  // the same decision fails). Never call it without a matching take.
  void refund();

 private:
  std::atomic<std::int64_t> interval_ns_{0};   // 1 / rate
  std::atomic<std::int64_t> tolerance_ns_{0};  // (burst - 1) / rate
  std::atomic<std::int64_t> tat_ns_{std::numeric_limits<std::int64_t>::min()};
};

// Per-exit limits, applied to every exit when a snapshot is built (all off by default).
struct limits_config {
  double per_exit_rate = 0;       // requests or new tunnels per second per exit; 0 = off
  double burst = 1;               // bucket size of both rate limits (>= 1)
  int per_exit_concurrency = 0;   // in-flight leases per exit; 0 = off
  double per_exit_host_rate = 0;  // per exit and target host; 0 = off (see host_limits)
  // Live sticky sessions kept at most (session_table); a new session beyond is refused with
  // 429. Sessions are client-chosen keys, so the table must be bounded; --max-sticky-sessions.
  std::size_t max_sticky_sessions = std::size_t{1} << 18;
};

// Token buckets per (exit, target host), shared by all shards. An entry exists only
// while its bucket is not full again: an idle pair is the same as no entry and is
// dropped (expiry = the time the bucket refills). Bounded by max_entries.
// Striped by host: a pick checks every candidate exit of one host under one lock.
class host_limits {
 public:
  explicit host_limits(double rate_per_s, double burst = 1, std::size_t max_entries = 1 << 20);
  explicit host_limits(const limits_config& c, std::size_t max_entries = 1 << 20)
      : host_limits(c.per_exit_host_rate, c.burst, max_entries) {}

  bool limited() const { return interval_ns_ > 0; }
  bool try_take(const exit& e, std::string_view host, time_point now);
  time_point next_available(const exit& e, std::string_view host, time_point now) const;
  void refund(const exit& e, std::string_view host);
  // Batch peek for the selector: out[i] = next_available for exit_hashes[i] (one lock).
  void next_available_many(std::string_view host, std::uint64_t host_hash, std::span<const std::uint64_t> exit_hashes,
                           time_point now, std::span<time_point> out) const;

  std::size_t size() const { return map_.size(); }
  std::size_t sweep(time_point now) { return map_.sweep(now); }

 private:
  struct cell {
    std::int64_t tat_ns = std::numeric_limits<std::int64_t>::min();
  };
  using map_type = expiring_map<exit_host_key, cell, exit_host_hash, exit_host_eq>;
  std::int64_t interval_ns_ = 0;
  std::int64_t tolerance_ns_ = 0;
  mutable map_type map_;
};

}  // namespace exitpool::pool
