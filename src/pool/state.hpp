#pragma once
// The state seam: every piece of mutable pool state that must be shared when several
// gateways or fetch workers serve one pool, behind one interface.
//
//   sticky-session anchors   session, anchor_session
//   bans per (exit, host)    ban, banned_until, banned_until_many, bans_by_exit
//   rate-limit buckets       per exit: exit_token_at / take_exit_token / refund_exit_token
//                            per (exit, host): host_token_at(_many) / take_host_token / refund_host_token
//   concurrency counts       try_acquire (a lease)
//   health verdicts          report
//   tier memory              start_tier, record_tier
//
// local_state, below, is the in-process implementation: today's striped tables and the
// exits' own atomics, shared by every shard of one process. It is the default.
//
// How a remote backend (Redis, for a fleet) plugs in without a network round trip per
// request: the selector calls these methods for every candidate it looks at, so every
// method must answer from memory. A remote backend keeps local mirrors and reconciles
// them in the background:
//  - rate limits: it is granted tokens in small batches (the fleet-wide GCRA runs
//    remotely); take_* spends the local grant, and an empty grant reads as "no token
//    until the next refill", which the selector treats like any other rate limit;
//  - bans and health verdicts: written locally at once and published asynchronously;
//    other gateways' bans and ejections arrive by subscription and are applied to the
//    local tables and exits (read on (re)connect too);
//  - sticky anchors: the generation is computed locally (rendezvous hashing needs no
//    shared state: every gateway starts a session on the same exit) and the first-use
//    time and the anchor (the exit a session moved to) are shared asynchronously;
//  - concurrency: a per-gateway share of the cap (cap / N) when the remote is unreachable.
// A backend that cannot reach its remote falls back to local decisions at limit / N; it
// never fails a request because of it.
//
// Health verdicts and concurrency are read by the selector from the exit itself
// (exit::state, exit::inflight): those atomics are the local mirror. report() and
// try_acquire() are the only writers.
//
// Threading: every method may be called from any shard at once (implementations use
// atomics and striped locks, never one lock for everything).

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pool/ban.hpp"
#include "pool/clock.hpp"
#include "pool/pool.hpp"
#include "pool/rate_limit.hpp"
#include "pool/sticky.hpp"
#include "pool/tier.hpp"

namespace exitpool::pool {

class state {
 public:
  virtual ~state() = default;

  // Sticky sessions: the generation of `key` at `now` and the exit it is anchored to,
  // and a new anchor for it (see session_table).
  virtual session_info session(std::string_view key, std::chrono::seconds ttl, time_point now) = 0;
  virtual void anchor_session(std::string_view key, std::uint64_t generation, std::uint64_t exit_hash) = 0;

  // Bans of an exit for one target host (lower-case, no port). A longer ban already in
  // force is kept.
  virtual void ban(const exit& e, std::string_view host, time_point until) = 0;
  virtual std::optional<time_point> banned_until(const exit& e, std::string_view host, time_point now) const = 0;
  // out[i]: end of the ban of exit_hashes[i] for host, or time_point::min() when none.
  virtual void banned_until_many(std::string_view host, std::uint64_t host_hash,
                                 std::span<const std::uint64_t> exit_hashes, time_point now,
                                 std::span<time_point> out) const = 0;
  // Every ban in force, by exit (admin pages, not request paths: walks the table).
  virtual ban_index bans_by_exit(time_point now) const = 0;
  // Bans in force (metrics, not request paths).
  virtual std::size_t ban_count(time_point now) const = 0;

  // Per-exit rate limit: the earliest time a token is free (`now` when one is free or
  // the exit is not limited), take one, give one back.
  virtual time_point exit_token_at(const exit& e, time_point now) const = 0;
  virtual bool take_exit_token(exit& e, time_point now) = 0;
  virtual void refund_exit_token(exit& e) = 0;

  // Per (exit, host) rate limit; host_rate_limited() false: off, the rest are not called.
  virtual bool host_rate_limited() const = 0;
  virtual time_point host_token_at(const exit& e, std::string_view host, time_point now) const = 0;
  virtual void host_token_at_many(std::string_view host, std::uint64_t host_hash,
                                  std::span<const std::uint64_t> exit_hashes, time_point now,
                                  std::span<time_point> out) const = 0;
  virtual bool take_host_token(const exit& e, std::string_view host, time_point now) = 0;
  virtual void refund_host_token(const exit& e, std::string_view host) = 0;

  // Concurrency: a lease when `e` is below its cap (exact), empty otherwise.
  virtual lease try_acquire(exit& e) = 0;

  // Health: records an outcome of `e` (passive checks and active probes).
  virtual void report(exit& e, const outcome& o, time_point now) = 0;

  // Tiers: the remembered start tier of a host, and a success at `tier` for it.
  virtual std::optional<int> start_tier(std::string_view host, time_point now) const = 0;
  virtual void record_tier(std::string_view host, int tier, time_point now) = 0;

  // Drops what expired (call now and then, e.g. once a minute, from any one thread).
  virtual void sweep(time_point now) = 0;

  // Who decided a ban or an ejection in force (admin pages, not request paths): empty when
  // this process did, else the id of the gateway of the fleet that did (fleet backends only).
  virtual std::string ban_origin(const exit& /*e*/, std::string_view /*host*/, time_point /*now*/) const { return {}; }
  virtual std::string ejection_origin(const exit& /*e*/, time_point /*now*/) const { return {}; }
};

// In-process state: the default, and what a fleet backend falls back to.
class local_state final : public state {
 public:
  explicit local_state(const limits_config& limits = {}, const health_config& health = {},
                       std::chrono::seconds tier_ttl = std::chrono::minutes(10));

  session_info session(std::string_view key, std::chrono::seconds ttl, time_point now) override {
    return sessions_.lookup(key, ttl, now);
  }
  void anchor_session(std::string_view key, std::uint64_t generation, std::uint64_t exit_hash) override {
    sessions_.anchor(key, generation, exit_hash);
  }

  void ban(const exit& e, std::string_view host, time_point until) override { bans_.ban(e, host, until); }
  std::optional<time_point> banned_until(const exit& e, std::string_view host, time_point now) const override {
    return bans_.banned_until(e, host, now);
  }
  void banned_until_many(std::string_view host, std::uint64_t host_hash, std::span<const std::uint64_t> exit_hashes,
                         time_point now, std::span<time_point> out) const override {
    bans_.banned_until_many(host, host_hash, exit_hashes, now, out);
  }
  ban_index bans_by_exit(time_point now) const override { return bans_.bans_by_exit(now); }
  std::size_t ban_count(time_point now) const override { return bans_.count(now); }

  time_point exit_token_at(const exit& e, time_point now) const override {
    return e.limiter().limited() ? e.limiter().next_available(now) : now;
  }
  bool take_exit_token(exit& e, time_point now) override { return e.limiter().try_take(now); }
  void refund_exit_token(exit& e) override { e.limiter().refund(); }

  bool host_rate_limited() const override { return host_rates_.limited(); }
  time_point host_token_at(const exit& e, std::string_view host, time_point now) const override {
    return host_rates_.next_available(e, host, now);
  }
  void host_token_at_many(std::string_view host, std::uint64_t host_hash, std::span<const std::uint64_t> exit_hashes,
                          time_point now, std::span<time_point> out) const override {
    host_rates_.next_available_many(host, host_hash, exit_hashes, now, out);
  }
  bool take_host_token(const exit& e, std::string_view host, time_point now) override {
    return host_rates_.try_take(e, host, now);
  }
  void refund_host_token(const exit& e, std::string_view host) override { host_rates_.refund(e, host); }

  lease try_acquire(exit& e) override { return lease::try_acquire(e); }

  void report(exit& e, const outcome& o, time_point now) override { e.report(o, now, health_); }

  std::optional<int> start_tier(std::string_view host, time_point now) const override {
    return tiers_.start_tier(host, now);
  }
  void record_tier(std::string_view host, int tier, time_point now) override { tiers_.record(host, tier, now); }

  void sweep(time_point now) override;

  // For tests and the admin metrics.
  const ban_table& bans() const { return bans_; }
  std::size_t session_count() const { return sessions_.size(); }
  const health_config& health() const { return health_; }

 private:
  health_config health_;
  session_table sessions_;
  ban_table bans_;
  host_limits host_rates_;
  tier_memory tiers_;
};

}  // namespace exitpool::pool
