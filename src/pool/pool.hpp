#pragma once
// Exits and the immutable pool snapshot. No sockets, no clocks read here:
// time and outcomes are inputs, so every decision is testable.
//
// Threading: a snapshot is immutable and shared by every shard; an exit's spec is
// immutable and its stats are relaxed atomics written by whichever shard reports
// an outcome. The current snapshot sits behind pool_holder, swapped on reload
// (exits that did not change are carried over, so their stats and sessions stay).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pool/clock.hpp"
#include "pool/rate_limit.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::pool {

// Passive health: an exit that fails `failures_to_eject` dials in a row is ejected
// for base_cooldown, doubled on each consecutive ejection up to max_cooldown.
// When the cool-down ends the exit is probing: the selector lets one request at a
// time use it (the probe); a success makes it healthy, a failure ejects it again at
// once with the doubled cool-down. A probe that never reports lapses after
// probe_timeout (another request may then probe).
struct health_config {
  int failures_to_eject = 3;
  std::chrono::milliseconds base_cooldown{std::chrono::seconds(10)};
  std::chrono::milliseconds max_cooldown{std::chrono::seconds(300)};
  std::chrono::milliseconds probe_timeout{std::chrono::seconds(30)};
};

enum class exit_state {
  healthy,  // in rotation
  ejected,  // in a cool-down (chosen only by the selector's panic fallback)
  probing,  // cool-down over, not yet proven: one request at a time
};
const char* state_name(exit_state s);

struct outcome {
  bool ok = false;
  std::chrono::microseconds latency{0};  // dial latency (connect + proxy handshake)
  bool sample = true;                    // latency is a sample for the EWMA (false: a reused connection)
};

class family;

class exit {
 public:
  exit(proto::exit_spec spec, std::uint32_t index);
  // A virtual exit of the provider line `parent` (pool/elastic.hpp): its index and tier, and
  // an id hash derived from the line's and the provider session (pool::virtual_hash).
  exit(proto::exit_spec spec, exit& parent, std::uint64_t id_hash);
  exit(const exit&) = delete;
  exit& operator=(const exit&) = delete;
  ~exit();

  // A provider line (spec().provider set): an elastic exit whose attempts run on virtual
  // exits (pool/elastic.hpp). Its family holds the sticky sessions' virtual exits.
  bool elastic() const { return family_ != nullptr; }
  family* virtuals() const { return family_.get(); }
  // The provider line of a virtual exit; null for every other exit.
  exit* parent() const { return parent_; }

  const proto::exit_spec& spec() const { return spec_; }
  const std::string& id() const { return spec_.id; }
  std::uint64_t id_hash() const { return id_hash_; }
  // Position in the snapshot that created this exit. An exit carried over by a
  // reload keeps its first index, so never use it to index another snapshot.
  std::uint32_t index() const { return index_; }

  // Tier from the `tier=N` tag (lower = preferred); 0 without the tag or when its
  // value is not an integer.
  int tier() const { return tier_; }

  // Not in an ejection cool-down at `now` (healthy or probing).
  bool usable(time_point now) const;
  exit_state state(time_point now) const;
  time_point down_until() const;
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }
  // Exponentially weighted dial latency in microseconds; negative when no sample yet.
  double ewma_latency_us() const;
  std::uint64_t successes() const { return successes_.load(std::memory_order_relaxed); }
  std::uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  int consecutive_failures() const { return consecutive_failures_.load(std::memory_order_relaxed); }

  // Records a dial outcome (passive health check). Any thread. A success ends any
  // cool-down or probe; a failure while probing re-ejects at once (doubled cool-down).
  void report(const outcome& o, time_point now, const health_config& cfg);

  // An ejection decided elsewhere (another gateway of a fleet): the exit is in a cool-down
  // until `until` unless it already is for longer. Counts no failure. Any thread.
  void hold_down_until(time_point until);

  // Probing: claims the single probe slot (free, or claimed longer than `timeout`
  // ago). The selector calls this on the exit it chooses; report() frees the slot.
  bool try_claim_probe(time_point now, std::chrono::milliseconds timeout);
  // Frees the probe slot without an outcome (the request ended without telling
  // whether the exit works, e.g. the target refused). Any thread.
  void release_probe() { probe_claimed_ns_.store(0, std::memory_order_relaxed); }
  // When a probe claimed at or before `now` lapses; nullopt when the slot is free.
  std::optional<time_point> probe_busy_until(time_point now, std::chrono::milliseconds timeout) const;

  // Rate and concurrency limits (limits_config, applied by snapshot::build; off by default).
  token_bucket& limiter() { return limiter_; }
  const token_bucket& limiter() const { return limiter_; }
  int concurrency_cap() const { return concurrency_cap_.load(std::memory_order_relaxed); }  // 0 = none
  bool at_concurrency_cap() const {
    const int cap = concurrency_cap();
    return cap > 0 && inflight() >= cap;
  }
  void apply_limits(const limits_config& c);
  // Asks the CPU to load the counters a pick reads (state, load, limits), so a selector
  // sampling several exits of a large pool waits for their cache misses in parallel.
  void prefetch() const {
    __builtin_prefetch(&inflight_);
    __builtin_prefetch(&limiter_);
  }

 private:
  friend class lease;
  proto::exit_spec spec_;
  std::uint64_t id_hash_;
  std::uint32_t index_;
  int tier_ = 0;
  exit* parent_ = nullptr;
  std::unique_ptr<family> family_;
  // Written from every shard: a cache line of padding keeps them off the lines of the
  // read-mostly fields above. (Not alignas(64): an over-aligned exit needs an aligned
  // allocation, which costs ~160 B and a slower malloc per exit in a million-exit pool.)
  char shared_line_pad_[64] = {};
  std::atomic<int> inflight_{0};
  std::atomic<std::uint64_t> successes_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<int> consecutive_failures_{0};
  std::atomic<int> ejections_{0};
  std::atomic<std::int64_t> down_until_ns_{0};  // steady_clock ns since epoch
  std::atomic<std::int64_t> ewma_latency_ns_{-1};
  std::atomic<std::int64_t> probe_claimed_ns_{0};  // 0: probe slot free
  std::atomic<int> concurrency_cap_{0};
  token_bucket limiter_;
};

// RAII in-flight counter on an exit.
class lease {
 public:
  lease() = default;
  explicit lease(exit& e) : exit_(&e) { e.inflight_.fetch_add(1, std::memory_order_relaxed); }
  lease(lease&& o) noexcept : exit_(std::exchange(o.exit_, nullptr)) {}
  lease& operator=(lease&& o) noexcept {
    if (this != &o) {
      release();
      exit_ = std::exchange(o.exit_, nullptr);
    }
    return *this;
  }
  ~lease() { release(); }
  // A lease only if `e` is below its concurrency cap (exact across shards, unlike the
  // selector's check, which a racing shard can overtake); empty otherwise.
  static lease try_acquire(exit& e) {
    const int cap = e.concurrency_cap();
    int cur = e.inflight_.load(std::memory_order_relaxed);
    do {
      if (cap > 0 && cur >= cap) {
        return lease();
      }
    } while (!e.inflight_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
    lease out;
    out.exit_ = &e;
    return out;
  }
  exit* get() const { return exit_; }
  explicit operator bool() const { return exit_ != nullptr; }
  void release() {
    if (exit_) {
      exit_->inflight_.fetch_sub(1, std::memory_order_relaxed);
      exit_ = nullptr;
    }
  }

 private:
  exit* exit_ = nullptr;
};

// What a client asked for: tag filters. Empty fields match anything. state and asn are
// not indexed: an exit serves them with a `state=` / `asn=` tag, a provider line when its
// templates carry {state} / {asn}. A provider line matches what it serves
// (proto::provider_line::serves) and its type.
struct filter {
  std::string country;
  std::string city;
  std::string type;
  std::string state;
  std::string asn;
  bool empty() const { return country.empty() && city.empty() && type.empty() && state.empty() && asn.empty(); }
  bool matches(const exit& e) const;
  // "country=us type=residential", or "any" when empty.
  std::string describe() const;
};

class snapshot {
 public:
  // Builds a snapshot; exits in `previous` with the same id and the same spec are
  // carried over (same object, same stats). `previous` may be null. `limits` is
  // applied to every exit, carried over or new (a reload can change them). A big pool
  // (50,000 exits or more a thread) is built by up to `threads` threads, the caller's
  // among them; the result does not depend on it. Any thread.
  static std::shared_ptr<const snapshot> build(std::vector<proto::exit_spec> specs, const snapshot* previous = nullptr,
                                               const limits_config& limits = {}, unsigned threads = 2);

  const std::vector<std::shared_ptr<exit>>& exits() const { return exits_; }
  // Every exit has the same tier (the selector's fast round-robin path relies on it).
  bool single_tier() const { return single_tier_; }
  // Unique per snapshot built in this process, never reused (unlike its address): keys
  // the selector's per-snapshot caches.
  std::uint64_t serial() const { return serial_; }
  // Every exit has the same weight (max(weight, 0)), so weighted picks are uniform; and
  // the largest weight (>= 0). For the selector's sampled picks on large pools.
  bool uniform_weight() const { return uniform_weight_; }
  double max_weight() const { return max_weight_; }
  std::size_t size() const { return exits_.size(); }
  const exit* find(std::string_view id) const;
  // The exit whose id_hash() is `id_hash` (sticky anchors); null when none.
  exit* find_hash(std::uint64_t id_hash) const;
  // A live virtual exit of one of the provider lines with this id hash (sticky anchors on
  // provider lines: pool/elastic.hpp); null when none. Locks one stripe per provider line.
  std::shared_ptr<exit> find_virtual(std::uint64_t id_hash, time_point now) const;
  // The provider lines (their indices), and the per-exit limits the snapshot applied (what
  // a virtual exit gets).
  std::span<const std::uint32_t> elastic() const { return elastic_; }
  const limits_config& limits() const { return limits_; }
  // How many exits build() carried over from `previous` (same object, same stats).
  std::size_t carried_over() const { return carried_over_; }

  // Indices of the exits that could match `f`: the smallest tag index among the
  // filter's set fields, or every exit when the filter is empty (in order: position i
  // holds i). Callers still check filter::matches on each.
  std::span<const std::uint32_t> candidates(const filter& f) const;

 private:
  std::vector<std::shared_ptr<exit>> exits_;
  std::vector<std::uint32_t> all_;
  bool single_tier_ = true;
  std::uint64_t serial_ = 0;
  bool uniform_weight_ = true;
  double max_weight_ = 0;
  std::unordered_map<std::string, std::vector<std::uint32_t>> by_country_, by_city_, by_type_;
  // Provider lines, and those that serve any country / any city (countries=* / cities=*):
  // the candidates for a value no other exit has.
  std::vector<std::uint32_t> elastic_, any_country_, any_city_;
  limits_config limits_;
  // By id: open addressing over exits_, two slots per exit. A slot holds the upper 32 bits
  // of the exit's id_hash() and its index + 1 (0 = empty): no node per exit, and a probe
  // reads an exit only when those bits match.
  std::vector<std::uint64_t> id_slots_;
  std::size_t carried_over_ = 0;
  void index_provider_lines();
  // Index of the exit with this id (hash = hash64(id)); -1 when none.
  std::int64_t index_of(std::string_view id, std::uint64_t hash) const;
};

// The current snapshot; readers load it once per connection or request.
class pool_holder {
 public:
  explicit pool_holder(std::shared_ptr<const snapshot> s) : current_(std::move(s)) {}
  std::shared_ptr<const snapshot> load() const { return current_.load(std::memory_order_acquire); }
  void store(std::shared_ptr<const snapshot> s) { current_.store(std::move(s), std::memory_order_release); }

 private:
  std::atomic<std::shared_ptr<const snapshot>> current_;
};

}  // namespace exitpool::pool
