#pragma once
// Sticky sessions without shared routing state.
//
// The exit of a session is chosen by rendezvous (highest-random-weight) hashing of
// (session key, generation, exit id) over the exits that match the filters and are
// usable: every shard — and every gateway of a fleet with the same pool — computes
// the same exit, and when an exit fails only its own sessions move.
// On large pools (selector.hpp: fast_path_min candidates or more) the rendezvous runs
// over a window of the session's place on a ring of the exits' id hashes instead of over
// all of them: O(1) per pick with the same properties, at the cost of a less even load
// and about twice the moves on a reload (see pick_sticky_bounded in selector.cpp).
// Lifetime is anchored to first use: session_table remembers when a key was first
// seen and bumps its generation when its lifetime has passed, which moves the
// session to a fresh rendezvous choice.

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pool/pool.hpp"

namespace exitpool::pool {

// Stable 64-bit hash of bytes (the same in every process and build).
std::uint64_t hash64(std::string_view data, std::uint64_t seed = 0);
// Mixes two hashes into one (for rendezvous scores).
std::uint64_t mix64(std::uint64_t a, std::uint64_t b);

// Weighted rendezvous score (higher wins): -weight / ln(u), u uniform in (0,1) from the hash.
double rendezvous_score(std::uint64_t key_hash, std::uint64_t exit_hash, double weight);

// Shared by all shards. One lookup per new connection or request with a session,
// behind one of 64 striped mutexes: contention is negligible and this is the only
// place a shard needs another shard's knowledge (when the session started).
class session_table {
 public:
  // The generation of `key` at `now`: a key seen for the first time, or whose
  // lifetime `ttl` (from its first use in the current generation) has passed,
  // starts a new generation anchored at `now`.
  std::uint64_t generation(std::string_view key, std::chrono::seconds ttl, time_point now);
  // Drops entries expired at `now`. Returns how many remain.
  std::size_t sweep(time_point now);
  std::size_t size() const;

 private:
  struct entry {
    std::uint64_t generation = 0;
    time_point expires{};
  };
  struct alignas(64) stripe {
    mutable std::mutex mu;
    std::unordered_map<std::string, entry> map;
  };
  std::array<stripe, 64> stripes_;
};

}  // namespace exitpool::pool
