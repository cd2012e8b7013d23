#pragma once
// Exit selection: filters, rotation policies, sticky sessions, health and the
// exits already tried for this request. Pure decisions; time is an input.
// One selector per shard (it holds the round-robin cursor and the random
// generator): not thread-safe, no locks, no shared writes.

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string_view>

#include "pool/pool.hpp"

namespace exitpool::pool {

enum class policy { round_robin, random, least_inflight, fastest };
std::optional<policy> parse_policy(std::string_view name);
const char* policy_name(policy p);

struct pick_request {
  filter f;
  // Non-empty: sticky. The key (user + session id) and its generation from session_table.
  std::string_view sticky_key;
  std::uint64_t sticky_generation = 0;
  // Exits already tried for this request (retries never reuse one).
  std::span<const exit* const> exclude;
};

enum class pick_error {
  none,
  no_match,     // no exit in the pool has the requested tags
  exhausted,    // exits match, but every one of them was already tried
};

struct pick_result {
  exit* chosen = nullptr;
  pick_error error = pick_error::none;
  std::size_t matching = 0;  // exits matching the filter (for error messages)
};

class selector {
 public:
  selector(policy p, std::uint64_t seed);

  // Chooses an exit matching r.f that is not in r.exclude. Prefers usable exits
  // (not in cool-down); when every remaining match is cooling down it still picks
  // one (the one whose cool-down ends first) rather than failing — a pool in which
  // everything looks dead is more often a network blip than a dead pool.
  // Sticky requests use rendezvous hashing (see sticky.hpp), whatever the policy.
  //   round_robin:    next matching exit after this shard's cursor
  //   random:         weighted by the exit's weight
  //   least_inflight: fewest in-flight leases (ties: random); power-of-two-choices
  //                   sampling when more than 64 exits match
  //   fastest:        lowest EWMA dial latency; exits without samples first; 5% random
  //                   exploration so slow exits are re-measured
  pick_result pick(const snapshot& s, const pick_request& r, time_point now);

  policy which() const { return policy_; }

 private:
  policy policy_;
  std::uint64_t cursor_;
  std::mt19937_64 rng_;
};

}  // namespace exitpool::pool
