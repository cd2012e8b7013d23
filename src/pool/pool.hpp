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
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proto/pool_line.hpp"

namespace exitpool::pool {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

// Passive health: an exit that fails `failures_to_eject` dials in a row is ejected
// for base_cooldown, doubled on each consecutive ejection up to max_cooldown.
struct health_config {
  int failures_to_eject = 3;
  std::chrono::milliseconds base_cooldown{std::chrono::seconds(10)};
  std::chrono::milliseconds max_cooldown{std::chrono::seconds(300)};
};

struct outcome {
  bool ok = false;
  std::chrono::microseconds latency{0};  // dial latency (connect + proxy handshake)
};

class exit {
 public:
  exit(proto::exit_spec spec, std::uint32_t index);
  exit(const exit&) = delete;
  exit& operator=(const exit&) = delete;

  const proto::exit_spec& spec() const { return spec_; }
  const std::string& id() const { return spec_.id; }
  std::uint64_t id_hash() const { return id_hash_; }
  // Position in the snapshot that created this exit. An exit carried over by a
  // reload keeps its first index, so never use it to index another snapshot.
  std::uint32_t index() const { return index_; }

  // Not in an ejection cool-down at `now`.
  bool usable(time_point now) const;
  time_point down_until() const;
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }
  // Exponentially weighted dial latency in microseconds; negative when no sample yet.
  double ewma_latency_us() const;
  std::uint64_t successes() const { return successes_.load(std::memory_order_relaxed); }
  std::uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  int consecutive_failures() const { return consecutive_failures_.load(std::memory_order_relaxed); }

  // Records a dial outcome (passive health check). Any thread.
  void report(const outcome& o, time_point now, const health_config& cfg);

 private:
  friend class lease;
  proto::exit_spec spec_;
  std::uint64_t id_hash_;
  std::uint32_t index_;
  // Written from every shard: keep them off the spec's cache lines.
  alignas(64) std::atomic<int> inflight_{0};
  std::atomic<std::uint64_t> successes_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<int> consecutive_failures_{0};
  std::atomic<int> ejections_{0};
  std::atomic<std::int64_t> down_until_ns_{0};    // steady_clock ns since epoch
  std::atomic<std::int64_t> ewma_latency_ns_{-1};
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
  exit* get() const { return exit_; }
  void release() {
    if (exit_) {
      exit_->inflight_.fetch_sub(1, std::memory_order_relaxed);
      exit_ = nullptr;
    }
  }

 private:
  exit* exit_ = nullptr;
};

// What a client asked for: tag filters. Empty fields match anything.
struct filter {
  std::string country;
  std::string city;
  std::string type;
  bool empty() const { return country.empty() && city.empty() && type.empty(); }
  bool matches(const exit& e) const;
  // "country=us type=residential", or "any" when empty.
  std::string describe() const;
};

class snapshot {
 public:
  // Builds a snapshot; exits in `previous` with the same id and the same spec are
  // carried over (same object, same stats). `previous` may be null.
  static std::shared_ptr<const snapshot> build(std::vector<proto::exit_spec> specs,
                                               const snapshot* previous = nullptr);

  const std::vector<std::shared_ptr<exit>>& exits() const { return exits_; }
  std::size_t size() const { return exits_.size(); }
  const exit* find(std::string_view id) const;

  // Indices of the exits that could match `f`: the smallest tag index among the
  // filter's set fields, or every exit when the filter is empty. Callers still
  // check filter::matches on each.
  std::span<const std::uint32_t> candidates(const filter& f) const;

 private:
  std::vector<std::shared_ptr<exit>> exits_;
  std::vector<std::uint32_t> all_;
  std::unordered_map<std::string, std::vector<std::uint32_t>> by_country_, by_city_, by_type_;
  std::unordered_map<std::string_view, std::uint32_t> by_id_;
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
