#pragma once
// Bans of an exit for one target host (the site answered 403/429/... through it),
// shared by all shards, and the Retry-After parser that sizes them. Pure decisions;
// time is an input.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pool/clock.hpp"
#include "pool/expiring_map.hpp"

namespace exitpool::pool {

class exit;

// Every ban in force at one moment, grouped by exit (exit::id_hash), each exit's bans
// sorted by host: (host, until). Built by one walk of the ban table, for admin pages.
using ban_index = std::unordered_map<std::uint64_t, std::vector<std::pair<std::string, time_point>>>;

// (exit, target host) -> banned until. Any thread. Striped by host (64 mutexes, see
// expiring_map.hpp), so a pick checks all its candidates for one host under one lock,
// and the lock is skipped entirely while the host's stripe holds no ban. Bounded by
// max_entries (default 1M): when full, expired bans go first, then those ending soonest.
// Hosts are compared as given: callers pass them lower-cased, without port.
class ban_table {
 public:
  explicit ban_table(std::size_t max_entries = 1 << 20) : map_(max_entries) {}

  // Bans `e` for `host` until `until`. An existing longer ban is kept (the later end wins).
  void ban(const exit& e, std::string_view host, time_point until);
  // Lifts a ban early (e.g. an admin action). Returns whether there was one.
  bool unban(const exit& e, std::string_view host);
  bool banned(const exit& e, std::string_view host, time_point now) const;
  // End of the ban in force at `now`, if any.
  std::optional<time_point> banned_until(const exit& e, std::string_view host, time_point now) const;
  // Batch lookup for the selector: out[i] = end of the ban of exit_hashes[i] for host,
  // or time_point::min() when none is in force at `now`. One lock at most.
  void banned_until_many(std::string_view host, std::uint64_t host_hash, std::span<const std::uint64_t> exit_hashes,
                         time_point now, std::span<time_point> out) const;

  // Every ban in force at `now`, by exit. Walks the whole table once (one stripe locked
  // at a time): for the admin pages (/exits, the dashboard), not request paths.
  ban_index bans_by_exit(time_point now) const;
  // Bans in force at `now` (walks the table, like bans_by_exit).
  std::size_t count(time_point now) const;
  // Entries held, some possibly expired (cheap; for metrics).
  std::size_t size() const { return map_.size(); }
  // Drops expired bans; returns how many remain. Call now and then (e.g. once a minute).
  std::size_t sweep(time_point now) { return map_.sweep(now); }

 private:
  struct none {};
  using map_type = expiring_map<exit_host_key, none, exit_host_hash, exit_host_eq>;
  mutable map_type map_;
};

// Parses a Retry-After header value (RFC 9110 §10.2.3): delta-seconds ("120") or an
// HTTP-date (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT"; the obsolete RFC 850 and
// asctime forms are accepted too). Returns the wait, clamped to [0, cap]; a date in
// the past gives 0s. nullopt when the value is malformed.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now,
                                                      std::chrono::seconds cap = std::chrono::hours(1));

}  // namespace exitpool::pool
