#pragma once
// Kept-alive upstream connections of one shard, for plain-HTTP forwarding.
//
// Reuse must never pin rotation: the selector picks the exit first, and only then is
// an idle connection looked up, under a key made of the exit (id and a hash of its
// credentials), the target (for direct and SOCKS exits, where the connection goes to
// the origin) and the client's sticky session. A request that picks another exit
// never rides this one's connection.
//
// Owned by one shard: no locks. Idle connections older than `max_idle` are closed by
// sweep() and never handed out.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/stream.hpp"
#include "pool/pool.hpp"

namespace exitpool::gateway {

class upstream_pool {
 public:
  explicit upstream_pool(std::size_t max_idle_total = 1024, std::size_t max_idle_per_key = 64,
                         std::chrono::milliseconds max_idle = std::chrono::seconds(15))
      : max_total_(max_idle_total), max_per_key_(max_idle_per_key), max_idle_(max_idle) {}

  // The key for requests through `ex` to `authority` (host:port) in sticky session `session`.
  static std::string key(const pool::exit& ex, std::string_view authority, std::string_view session);

  // An idle connection for `key` that is still open, or nullopt.
  std::optional<net::stream> take(const std::string& key, net::clock::time_point now);
  // Keeps `s` for later reuse (closes it instead when the pool is full).
  void put(const std::string& key, net::stream s, net::clock::time_point now);
  // Closes connections idle for longer than max_idle. Returns how many remain.
  std::size_t sweep(net::clock::time_point now);
  std::size_t size() const { return total_; }
  // Closes and drops every idle connection (before the shard's io_context goes away).
  void clear() {
    map_.clear();
    total_ = 0;
  }

 private:
  struct idle {
    net::stream s;
    net::clock::time_point since;
  };
  std::unordered_map<std::string, std::vector<idle>> map_;
  std::size_t total_ = 0;
  std::size_t max_total_;
  std::size_t max_per_key_;
  std::chrono::milliseconds max_idle_;
};

}  // namespace exitpool::gateway
