#include "pool/tier.hpp"

#include <algorithm>

#include "pool/sticky.hpp"

namespace exitpool::pool {

std::size_t tier_memory::string_hash::operator()(std::string_view s) const {
  return static_cast<std::size_t>(hash64(s));
}

std::optional<int> tier_memory::start_tier(std::string_view host, time_point now) const {
  const std::uint64_t hh = hash64(host);
  if (host.empty() || map_.stripe_empty(hh)) {
    return std::nullopt;
  }
  return map_.with_stripe(hh, [&](const map_type::map_type& m) -> std::optional<int> {
    auto it = m.find(host);
    if (it == m.end() || now >= it->second.expires) {
      return std::nullopt;
    }
    return it->second.value;
  });
}

void tier_memory::record(std::string_view host, int tier, time_point now) {
  if (host.empty()) {
    return;
  }
  const std::uint64_t hh = hash64(host);
  if (tier <= 0) {
    if (!map_.stripe_empty(hh)) {
      forget(host);
    }
    return;
  }
  map_.with_stripe(hh, [&](map_type::map_type& m) {
    auto [ent, inserted] = map_.upsert(m, host, now);
    if (inserted || now >= ent->expires) {
      ent->value = tier;
      ent->expires = now + ttl_;
    } else {
      ent->value = std::min(ent->value, tier);
    }
  });
}

void tier_memory::forget(std::string_view host) {
  map_.with_stripe(hash64(host), [&](map_type::map_type& m) {
    auto it = m.find(host);
    if (it != m.end()) {
      m.erase(it);
    }
  });
}

}  // namespace exitpool::pool
