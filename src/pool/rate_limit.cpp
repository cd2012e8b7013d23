#include "pool/rate_limit.hpp"

#include <algorithm>
#include <cmath>

#include "pool/pool.hpp"
#include "pool/sticky.hpp"

namespace exitpool::pool {

namespace {

constexpr std::int64_t ns_per_s = 1'000'000'000;

std::int64_t interval_for(double rate_per_s) {
  if (!(rate_per_s > 0)) {
    return 0;
  }
  // At least 1 ns, so an absurd rate still means "limited" rather than "off".
  return std::max<std::int64_t>(1, std::llround(static_cast<double>(ns_per_s) / rate_per_s));
}

std::int64_t tolerance_for(std::int64_t interval, double burst) {
  const double b = std::max(1.0, std::isfinite(burst) ? burst : 1.0);
  return std::llround((b - 1.0) * static_cast<double>(interval));
}

// GCRA decision for one take: the new TAT, or nothing when no token is free.
bool gcra_admit(std::int64_t tat, std::int64_t now, std::int64_t interval, std::int64_t tolerance, std::int64_t& next) {
  const std::int64_t base = std::max(tat, now);
  if (base - now > tolerance) {
    return false;
  }
  next = base + interval;
  return true;
}

time_point gcra_next(std::int64_t tat, time_point now, std::int64_t tolerance) {
  const std::int64_t t = to_ns(now);
  if (tat <= t || tat - t <= tolerance) {
    return now;
  }
  return from_ns(tat - tolerance);
}

}  // namespace

// ---- token_bucket -----------------------------------------------------------------------------

void token_bucket::configure(double rate_per_s, double burst) {
  const std::int64_t interval = interval_for(rate_per_s);
  tolerance_ns_.store(tolerance_for(interval, burst), std::memory_order_relaxed);
  interval_ns_.store(interval, std::memory_order_relaxed);
}

double token_bucket::rate() const {
  const std::int64_t interval = interval_ns_.load(std::memory_order_relaxed);
  return interval > 0 ? static_cast<double>(ns_per_s) / static_cast<double>(interval) : 0.0;
}

double token_bucket::burst() const {
  const std::int64_t interval = interval_ns_.load(std::memory_order_relaxed);
  if (interval <= 0) {
    return 0.0;
  }
  return 1.0 + static_cast<double>(tolerance_ns_.load(std::memory_order_relaxed)) / static_cast<double>(interval);
}

bool token_bucket::try_take(time_point now) {
  const std::int64_t interval = interval_ns_.load(std::memory_order_relaxed);
  if (interval <= 0) {
    return true;
  }
  const std::int64_t tolerance = tolerance_ns_.load(std::memory_order_relaxed);
  const std::int64_t t = to_ns(now);
  std::int64_t tat = tat_ns_.load(std::memory_order_relaxed);
  std::int64_t next = 0;
  do {
    if (!gcra_admit(tat, t, interval, tolerance, next)) {
      return false;
    }
  } while (!tat_ns_.compare_exchange_weak(tat, next, std::memory_order_relaxed));
  return true;
}

time_point token_bucket::next_available(time_point now) const {
  if (interval_ns_.load(std::memory_order_relaxed) <= 0) {
    return now;
  }
  return gcra_next(tat_ns_.load(std::memory_order_relaxed), now, tolerance_ns_.load(std::memory_order_relaxed));
}

void token_bucket::refund() {
  const std::int64_t interval = interval_ns_.load(std::memory_order_relaxed);
  if (interval > 0) {
    tat_ns_.fetch_sub(interval, std::memory_order_relaxed);
  }
}

// ---- host_limits ------------------------------------------------------------------------------

host_limits::host_limits(double rate_per_s, double burst, std::size_t max_entries)
    : interval_ns_(interval_for(rate_per_s)), tolerance_ns_(tolerance_for(interval_ns_, burst)), map_(max_entries) {}

bool host_limits::try_take(const exit& e, std::string_view host, time_point now) {
  if (interval_ns_ <= 0 || host.empty()) {
    return true;
  }
  const std::uint64_t hh = hash64(host);
  const exit_host_view key{e.id_hash(), hh, host};
  const std::int64_t t = to_ns(now);
  return map_.with_stripe(hh, [&](map_type::map_type& m) {
    auto [ent, inserted] = map_.upsert(m, key, now);
    std::int64_t next = 0;
    if (!gcra_admit(ent->value.tat_ns, t, interval_ns_, tolerance_ns_, next)) {
      return false;
    }
    ent->value.tat_ns = next;
    ent->expires = from_ns(next);  // full again (idle) from then on: droppable
    return true;
  });
}

time_point host_limits::next_available(const exit& e, std::string_view host, time_point now) const {
  if (interval_ns_ <= 0 || host.empty()) {
    return now;
  }
  const std::uint64_t hh = hash64(host);
  const std::uint64_t eh = e.id_hash();
  time_point out = now;
  next_available_many(host, hh, std::span(&eh, 1), now, std::span(&out, 1));
  return out;
}

void host_limits::next_available_many(std::string_view host, std::uint64_t host_hash,
                                      std::span<const std::uint64_t> exit_hashes, time_point now,
                                      std::span<time_point> out) const {
  std::fill(out.begin(), out.end(), now);
  if (interval_ns_ <= 0 || host.empty() || map_.stripe_empty(host_hash)) {
    return;
  }
  map_.with_stripe(host_hash, [&](const map_type::map_type& m) {
    for (std::size_t i = 0; i < exit_hashes.size(); ++i) {
      auto it = m.find(exit_host_view{exit_hashes[i], host_hash, host});
      if (it != m.end()) {
        out[i] = gcra_next(it->second.value.tat_ns, now, tolerance_ns_);
      }
    }
  });
}

void host_limits::refund(const exit& e, std::string_view host) {
  if (interval_ns_ <= 0 || host.empty()) {
    return;
  }
  const std::uint64_t hh = hash64(host);
  map_.with_stripe(hh, [&](map_type::map_type& m) {
    auto it = m.find(exit_host_view{e.id_hash(), hh, host});
    if (it != m.end()) {
      it->second.value.tat_ns -= interval_ns_;
      it->second.expires = from_ns(it->second.value.tat_ns);
    }
  });
}

}  // namespace exitpool::pool
