#pragma once
// A bounded map of entries that expire, split over 64 striped mutexes. The shared
// building block of ban_table, host_limits and tier_memory.
//
// Why mutexes on a request path: these tables are written by every shard (a ban seen
// on shard 3 must stop shard 5 choosing that exit), entries come and go by the
// million, and a lock-free hash map is far more code than 64 short critical sections
// (one hash lookup each). Callers pick the stripe with a hash they already have.
//
// Memory is bounded: each stripe holds at most max_entries / 64 entries. Inserting
// into a full stripe first drops its expired entries; if that frees less than an
// eighth of the stripe, the entries closest to expiry go too (an eighth at a time,
// so the O(stripe) pass is paid once per stripe/8 inserts). Expired entries that
// nobody touches are dropped by sweep() or by that pass.

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pool/clock.hpp"

namespace exitpool::pool {

template <class Key, class Value, class Hash, class Eq>
class expiring_map {
 public:
  struct entry {
    Value value{};
    time_point expires{};
  };
  using map_type = std::unordered_map<Key, entry, Hash, Eq>;
  static constexpr std::size_t stripe_count = 64;

  explicit expiring_map(std::size_t max_entries) : per_stripe_(std::max<std::size_t>(1, max_entries / stripe_count)) {}

  // The stripe's map, locked for the duration of `fn(map)`. Expired entries may be
  // present: callers compare `expires` with their `now`.
  template <class F>
  decltype(auto) with_stripe(std::uint64_t stripe_hash, F&& fn) {
    stripe& s = stripes_[stripe_hash % stripe_count];
    std::lock_guard lock(s.mu);
    struct count_update {
      stripe& s;
      ~count_update() { s.size.store(s.map.size(), std::memory_order_relaxed); }
    } update{s};
    return fn(s.map);
  }
  template <class F>
  decltype(auto) with_stripe(std::uint64_t stripe_hash, F&& fn) const {
    const stripe& s = stripes_[stripe_hash % stripe_count];
    std::lock_guard lock(s.mu);
    return fn(static_cast<const map_type&>(s.map));
  }

  // Lock-free hint: the stripe holds no entry at all (so a lookup can skip the lock).
  bool stripe_empty(std::uint64_t stripe_hash) const {
    return stripes_[stripe_hash % stripe_count].size.load(std::memory_order_relaxed) == 0;
  }

  // Finds or inserts `key` in a locked stripe map, making room first when the stripe
  // is full. Returns the entry and whether it was inserted (value default-built).
  template <class K>
  std::pair<entry*, bool> upsert(map_type& map, K&& key, time_point now) {
    auto it = map.find(key);
    if (it != map.end()) {
      return {&it->second, false};
    }
    if (map.size() >= per_stripe_) {
      make_room(map, now);
    }
    auto [ins, inserted] = map.try_emplace(Key(std::forward<K>(key)));
    return {&ins->second, inserted};
  }

  // Drops expired entries everywhere. Returns how many remain.
  std::size_t sweep(time_point now) {
    std::size_t remaining = 0;
    for (auto& s : stripes_) {
      std::lock_guard lock(s.mu);
      std::erase_if(s.map, [now](const auto& kv) { return now >= kv.second.expires; });
      s.size.store(s.map.size(), std::memory_order_relaxed);
      remaining += s.map.size();
    }
    return remaining;
  }

  // Entries held, expired or not (a relaxed sum: exact only when nobody writes).
  std::size_t size() const {
    std::size_t n = 0;
    for (const auto& s : stripes_) {
      n += s.size.load(std::memory_order_relaxed);
    }
    return n;
  }

  // fn(const Key&, const entry&) for every entry not expired at `now`, one stripe
  // locked at a time. For admin pages and tests, not for request paths.
  template <class F>
  void for_each(time_point now, F&& fn) const {
    for (const auto& s : stripes_) {
      std::lock_guard lock(s.mu);
      for (const auto& [k, e] : s.map) {
        if (now < e.expires) {
          fn(k, e);
        }
      }
    }
  }

  std::size_t capacity() const { return per_stripe_ * stripe_count; }

 private:
  struct alignas(64) stripe {
    mutable std::mutex mu;
    map_type map;
    std::atomic<std::size_t> size{0};
  };

  void make_room(map_type& map, time_point now) const {
    std::erase_if(map, [now](const auto& kv) { return now >= kv.second.expires; });
    const std::size_t target = per_stripe_ - std::max<std::size_t>(1, per_stripe_ / 8);
    if (map.size() <= target) {
      return;
    }
    // Still too full: drop the entries that would have expired first.
    std::vector<typename map_type::iterator> its;
    its.reserve(map.size());
    for (auto it = map.begin(); it != map.end(); ++it) {
      its.push_back(it);
    }
    const std::size_t drop = map.size() - target;
    std::nth_element(its.begin(), its.begin() + static_cast<std::ptrdiff_t>(drop - 1), its.end(),
                     [](const auto& a, const auto& b) { return a->second.expires < b->second.expires; });
    for (std::size_t i = 0; i < drop; ++i) {
      map.erase(its[i]);
    }
  }

  std::size_t per_stripe_;
  std::array<stripe, stripe_count> stripes_;
};

// Key of a per (exit, target host) entry. The host's hash is kept so lookups by view
// never hash the host again; stripes are chosen by host_hash, so every entry of a
// host sits in one stripe and a pick checks all its candidates under one lock.
struct exit_host_key {
  std::uint64_t exit_hash = 0;
  std::uint64_t host_hash = 0;
  std::string host;
};
struct exit_host_view {
  std::uint64_t exit_hash = 0;
  std::uint64_t host_hash = 0;
  std::string_view host;
  operator exit_host_key() const { return {exit_hash, host_hash, std::string(host)}; }
};
struct exit_host_hash {
  using is_transparent = void;
  std::size_t operator()(const exit_host_key& k) const { return mix(k.exit_hash, k.host_hash); }
  std::size_t operator()(const exit_host_view& k) const { return mix(k.exit_hash, k.host_hash); }
  static std::size_t mix(std::uint64_t a, std::uint64_t b) {
    return static_cast<std::size_t>((a ^ (b * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL >> 7);
  }
};
struct exit_host_eq {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return a.exit_hash == b.exit_hash && a.host_hash == b.host_hash &&
           std::string_view(a.host) == std::string_view(b.host);
  }
};

}  // namespace exitpool::pool
