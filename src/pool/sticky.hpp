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
// Within a generation a session keeps the exit it was given (its anchor): the exit is
// waited for while it is only busy (out of tokens, at its cap) and left only when it is
// unusable (ejected, banned for the host, removed, failing the dial). It then stays on
// the exit it moved to, also after the old one recovers (see selector::pick).

#include <array>
#include <chrono>
#include <cstddef>
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

// Why a sticky session waits for its exit (it is usable but has no capacity now).
enum class session_wait : std::uint8_t {
  none,
  rate_limit,       // the exit's own rate limit (--per-exit-rate)
  host_rate_limit,  // the exit's rate limit for this host (--per-exit-host-rate)
  concurrency,      // the exit is at its concurrency cap, or busy proving it recovered
};
inline constexpr std::size_t session_wait_count = 4;
const char* session_wait_name(session_wait w);

// Why a sticky session left the exit it was anchored to.
enum class session_move : std::uint8_t {
  none,
  ejected,      // the exit is in an ejection cool-down (or still proving it recovered)
  banned,       // the exit is banned for this request's host
  removed,      // the exit left the pool (reload) or no longer matches the filters
  dial_failed,  // the exit failed this request's dial (it is in the exclude list)
  busy,         // the exit had no capacity and the request asked to move rather than wait
};
inline constexpr std::size_t session_move_count = 6;
const char* session_move_name(session_move m);

// A session's place at one moment: its generation, and the id hash of the exit it is
// anchored to (0: none yet in this generation).
struct session_info {
  std::uint64_t generation = 0;
  std::uint64_t anchor = 0;
  bool fresh = false;  // this lookup started the generation (first use here, or lifetime over)
  // The table is full (session_table::max_keys live sessions): the key was not kept and
  // the request is refused (failure::client_limit, 429) rather than tracked halfway.
  bool refused = false;
};

// Shared by all shards. One lookup per new connection or request with a session,
// behind one of 64 striped mutexes: contention is negligible and this is the only
// place a shard needs another shard's knowledge (when the session started).
//
// Bounded by count: at most `max_keys` sessions (split evenly over the stripes). A new
// key that finds its stripe full first drops the stripe's expired sessions; when none
// has expired the new key is refused (session_info::refused). Live sessions are never
// evicted: a session that was promised its exit keeps it. (Key length is bounded where
// keys come from: proto/user_params.hpp.)
class session_table {
 public:
  static constexpr std::size_t default_max_keys = limits_config{}.max_sticky_sessions;
  explicit session_table(std::size_t max_keys = default_max_keys);

  // The generation of `key` at `now`: a key seen for the first time, or whose
  // lifetime `ttl` (from its first use in the current generation) has passed,
  // starts a new generation anchored at `now`.
  // The anchor is dropped with the generation.
  session_info lookup(std::string_view key, std::chrono::seconds ttl, time_point now);
  std::uint64_t generation(std::string_view key, std::chrono::seconds ttl, time_point now) {
    return lookup(key, ttl, now).generation;
  }
  // Anchors `key` to the exit with id hash `exit_hash`, if the key is still in
  // `generation` (a lifetime that ended meanwhile keeps its fresh start).
  void anchor(std::string_view key, std::uint64_t generation, std::uint64_t exit_hash);
  // Takes a session's place as decided elsewhere (a fleet's shared table): `key` is in
  // `generation`, anchored to `exit_hash` (0: none known there; a local anchor of the same
  // generation is kept), until `expires`. Ignored when the local entry is already in a
  // later generation.
  void adopt(std::string_view key, std::uint64_t generation, std::uint64_t exit_hash, time_point expires);
  // Drops entries expired at `now`. Returns how many remain.
  std::size_t sweep(time_point now);
  std::size_t size() const;

 private:
  struct entry {
    std::uint64_t generation = 0;
    std::uint64_t anchor = 0;
    time_point expires{};
  };
  struct alignas(64) stripe {
    mutable std::mutex mu;
    std::unordered_map<std::string, entry> map;
  };
  std::array<stripe, 64> stripes_;
  std::size_t per_stripe_;
};

}  // namespace exitpool::pool
