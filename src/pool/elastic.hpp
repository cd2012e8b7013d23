#pragma once
// Elastic exits: a provider line (proto/provider.hpp) is one exit in the snapshot — the
// selector weighs it, filters it by what it serves, checks its health, its rate= and
// max_sessions= like any exit's — and behind it a family of virtual exits, one per
// provider session. A virtual exit is an ordinary pool::exit (same gateway, credentials
// rendered from the line's templates), so bans per (exit, host), --per-exit-rate and
// --per-exit-concurrency, health, leases and sticky anchors apply to it unchanged; its
// parent() is the line, whose health and limits it shares.
//
//  - Rotation (no client session): a fresh provider session number per attempt (a new
//    connection, or each request on a kept-alive client connection). The virtual exit
//    lives as long as the attempt; it is not kept in the family.
//  - Sticky (a client session): the provider session number is derived from (session key,
//    generation, filter, k). k starts at 0; when that virtual exit is unusable for this
//    request (it failed the dial, is ejected or banned for the host) the next k is taken,
//    and the session's anchor moves to it (pool/sticky.hpp): the session continues on a
//    fresh IP and stays there. Every shard and every gateway of a fleet derives the same
//    numbers. These virtual exits are kept in the line's family while used, so anchors
//    find them (snapshot::find_virtual).
//
// Threading: a family is shared by every shard; its table is an expiring_map (striped
// mutexes, see why there) touched once per sticky pick on a provider line, like the
// session table (pool/sticky.hpp). Rotation takes no lock.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "pool/clock.hpp"
#include "pool/expiring_map.hpp"
#include "pool/rate_limit.hpp"

namespace exitpool::pool {

class exit;
struct filter;

// What a virtual exit is made for.
struct virtual_request {
  const filter* f = nullptr;  // the request's targeting (country, city, state, asn, type)
  std::uint64_t session = 0;  // the provider session number
  int sesstime_minutes = 0;   // the client session's lifetime; 0 without a session
};

// A virtual exit of `line` (an elastic exit) for `r`, with `limits` applied (the
// per-exit limits of the snapshot). Any thread.
std::shared_ptr<exit> make_virtual(exit& line, const virtual_request& r, const limits_config& limits);

// The id hash of `line`'s virtual exit for provider session `session`: what sticky anchors,
// bans and limits key it by (not a hash of its id text: no string is built to find it).
std::uint64_t virtual_hash(const exit& line, std::uint64_t session);

// The provider session number of a sticky session's k-th virtual exit on a line.
std::uint64_t sticky_session_number(std::uint64_t key_hash, std::uint64_t generation, const filter& f, std::uint64_t k);

// How many virtual exits a sticky pick tries on one line before it gives up on it.
inline constexpr std::uint64_t virtual_tries = 16;

class family {
 public:
  explicit family(std::size_t max_live = std::size_t{1} << 16) : map_(max_live) {}
  family(const family&) = delete;
  family& operator=(const family&) = delete;

  // The live virtual exit with this id hash, or null.
  std::shared_ptr<exit> find(std::uint64_t id_hash, time_point now) const;
  // The virtual exit of `line` for `r` (made on first use), kept until `until` (a later
  // call extends it). A full family drops the entries closest to their end first
  // (expiring_map): such a session derives the same exit again, as a new object.
  std::shared_ptr<exit> get(exit& line, const virtual_request& r, const limits_config& limits, time_point until,
                            time_point now);
  // Live virtual exits (the admin /exits page), ordered by id.
  std::vector<std::shared_ptr<exit>> live(time_point now) const;
  std::size_t size() const { return map_.size(); }

  // --learn-exit-ip (gateway/health.cpp): the IP a check URL saw through a virtual exit.
  // Whether the exit with this id hash still wants one (not known, fewer than max_tries
  // tries); a try's result ("" when it failed); the IP known ("" when none).
  bool wants_ip(std::uint64_t id_hash, int max_tries) const;
  void learn(std::uint64_t id_hash, std::string ip);
  std::string learned_ip(std::uint64_t id_hash) const;

 private:
  struct same {
    bool operator()(std::uint64_t a, std::uint64_t b) const { return a == b; }
  };
  struct by_hash {
    std::size_t operator()(std::uint64_t h) const { return static_cast<std::size_t>(h); }
  };
  // By the virtual exit's id hash; striped by it too.
  mutable expiring_map<std::uint64_t, std::shared_ptr<exit>, by_hash, same> map_;
  // Learned IPs: written by the health checks' shard, read by the admin page; never on a
  // request path, so one mutex. Dropped with their virtual exit (learn() prunes).
  struct learned {
    std::string ip;
    int tries = 0;
  };
  mutable std::mutex ips_mu_;
  std::unordered_map<std::uint64_t, learned> ips_;
};

}  // namespace exitpool::pool
