#include "pool/state.hpp"

namespace exitpool::pool {

local_state::local_state(const limits_config& limits, const health_config& health, std::chrono::seconds tier_ttl)
    : health_(health), sessions_(limits.max_sticky_sessions), host_rates_(limits), tiers_(tier_ttl) {}

void local_state::sweep(time_point now) {
  sessions_.sweep(now);
  bans_.sweep(now);
  host_rates_.sweep(now);
  tiers_.sweep(now);
}

}  // namespace exitpool::pool
