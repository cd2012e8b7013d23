#pragma once
// Tiers: a `tier=N` tag orders exits (lower = preferred; default 0). The selector
// uses the lowest tier that has a usable exit for the request and escalates to the
// next tier only when none has (see selector.hpp). tier_memory remembers, per target
// host, the tier that worked, so the next requests to that host start there.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "pool/clock.hpp"
#include "pool/expiring_map.hpp"

namespace exitpool::pool {

// Host -> lowest tier that worked for it recently. Shared by all shards (striped by
// host hash, bounded by max_entries). Any thread.
//
// The rule:
//  - record(host, t, now) is called after a request to `host` through an exit of tier
//    t succeeded. With no live entry it creates {t, expires = now + ttl}; with one it
//    lowers the remembered tier to min(remembered, t) and leaves the expiry alone.
//  - The expiry is never extended: after `ttl` the host starts again from the lowest
//    tier, so a host that needed residential exits during a ban goes back to the cheap
//    tier once the ban may have lifted, and re-learns if it has not.
//  - A success at tier 0 or below (the default tier) erases the entry: it means "no
//    memory", and keeps the table to the hosts that needed escalation.
//  - start_tier(host, now) is the remembered tier while live. The selector starts its
//    search there; tiers below it are used only when no tier at or above it can serve.
class tier_memory {
 public:
  explicit tier_memory(std::chrono::seconds ttl = std::chrono::minutes(10), std::size_t max_entries = 1 << 17)
      : ttl_(ttl), map_(max_entries) {}

  std::optional<int> start_tier(std::string_view host, time_point now) const;
  void record(std::string_view host, int tier, time_point now);
  void forget(std::string_view host);

  std::chrono::seconds ttl() const { return ttl_; }
  std::size_t size() const { return map_.size(); }
  std::size_t sweep(time_point now) { return map_.sweep(now); }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const;
  };
  struct string_eq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };
  using map_type = expiring_map<std::string, int, string_hash, string_eq>;
  std::chrono::seconds ttl_;
  mutable map_type map_;
};

}  // namespace exitpool::pool
