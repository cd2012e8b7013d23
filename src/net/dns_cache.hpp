#pragma once
// The pure half of the resolver (net/resolver.hpp for the gateway, fetch/transfer.hpp
// for fetch): what a lookup came to, how long an answer is kept, the per-shard cache
// (LRU with a size cap), and the bookkeeping that turns concurrent lookups of one name
// into one query. No sockets, no c-ares, no clock read here: time is an input, so all
// of it is unit-tested (tests/unit/net/dns_cache_test.cpp).
//
// Per shard, not shared. A cache shared by every shard would need a lock (or a
// concurrent map) on every lookup, and a lookup that misses would have to wake
// coroutines on other shards' executors; a hit costs one hash lookup per shard
// instead. The price is at most one query per shard per name and TTL (N shards, N
// queries), which a resolver answers from its own cache: cheap next to a connection.
//
// Threading: one `lookup_table` belongs to one shard (one thread); the free functions
// are pure and may be called from any thread.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace exitpool::net::dns {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

// What a lookup of a name came to.
enum class status : std::uint8_t {
  ok,              // one address or more
  not_found,       // NXDOMAIN: the name does not exist
  no_address,      // NODATA: the name exists without an A or AAAA record
  server_failure,  // an answer that did not parse, or a SERVFAIL / REFUSED passed on as such
  timeout,         // no server answered within the lookup timeout
  unreachable,     // every server failed: SERVFAIL, REFUSED (c-ares tries the next server on
                   // those), or nothing listening (connection refused)
  bad_name,        // not something that can be looked up (empty, too long, odd characters)
  internal,        // out of memory, cancelled, or another library error
};
inline constexpr std::size_t status_count = static_cast<std::size_t>(status::internal) + 1;

// Stable snake_case name ("not_found"), for logs and metric labels.
std::string_view status_name(status s);
// One line for X-Exitpool-Error: "no such name (NXDOMAIN)", "lookup timed out", ...
std::string_view status_text(status s);

// An address as the resolver library hands it over (no Asio in this header).
struct address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // network order; the first 4 for IPv4
  bool operator==(const address&) const = default;
};

// The answer for one address family (A or AAAA), or the merged answer for a name.
struct answer {
  status st = status::internal;
  std::vector<address> addresses;  // when ok
  std::chrono::seconds ttl{0};     // smallest record TTL (CNAMEs included), before clamping
};

// Both families of a name together: addresses when either has some (IPv4 first, then
// IPv6: without happy eyeballs a dial tries them in this order, and IPv6 is the family
// more often configured but unroutable), else the failure that says most about the name.
answer merge(const answer& v4, const answer& v6);

// How long answers are kept.
struct ttl_policy {
  std::chrono::seconds min_ttl{1};                      // record TTLs are raised to this...
  std::chrono::seconds max_ttl{std::chrono::hours(1)};  // ...and lowered to this
  std::chrono::seconds negative_ttl{5};                 // NXDOMAIN, NODATA, SERVFAIL, unreachable (at most max_ttl)
  // 0: not kept (timeouts, bad names, internal errors).
  clock::duration lifetime(const answer& a) const;
};

// Resolver settings shared by serve, check and fetch (--dns-* flags).
struct config {
  std::vector<std::string> servers;  // "ADDR[:PORT]" each; empty: /etc/resolv.conf
  ttl_policy ttl;
  std::chrono::milliseconds timeout{std::chrono::seconds(5)};  // per lookup
  std::size_t cache_size = 10000;                              // names per shard
};

// "ADDR", "ADDR:PORT", "[V6ADDR]:PORT" or "V6ADDR", comma-separated or one per entry,
// as c-ares's server CSV ("1.2.3.4:53,[::1]:5353"). Nullopt and `error` (naming the bad
// entry) when one is not an IP address with an optional port 1..65535.
std::optional<std::string> server_csv(const std::vector<std::string>& servers, std::string& error);

// The cache key of a host name: lower case, one trailing dot dropped. Nullopt when it
// cannot be a DNS name (empty, over 253 bytes, an empty or 64+ byte label, a byte other
// than a letter, digit, '-' or '_').
std::optional<std::string> normalize_name(std::string_view host);

// Answers by name until their lifetime ends; at most `capacity` names, the least
// recently used one evicted first. Expired answers are dropped when looked up or evicted.
class cache {
 public:
  cache(std::size_t capacity, ttl_policy policy);
  // The answer for `name` (normalised) while it is fresh, else null; a hit becomes the
  // most recently used. The pointer is valid until the next store().
  const answer* find(std::string_view name, time_point now);
  // Keeps `a` for policy.lifetime(a) from `now` (replacing what `name` had); a lifetime of
  // 0 keeps nothing and drops the old answer.
  void store(std::string_view name, const answer& a, time_point now);
  std::size_t size() const { return index_.size(); }
  const ttl_policy& policy() const { return policy_; }

 private:
  struct entry {
    std::string name;
    answer a;
    time_point expires;
  };
  struct hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::size_t capacity_;
  ttl_policy policy_;
  std::list<entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<entry>::iterator, hash, std::equal_to<>> index_;
};

// How a lookup was answered (metric label).
enum class source : std::uint8_t { cache, coalesced, query };
inline constexpr std::size_t source_count = 3;
std::string_view source_name(source s);

// The cache and the lookups in flight of one shard. begin() answers from the cache, or
// adds the caller to the query in flight for the name, or asks the caller to start one
// (a query per family: on_family() twice). When both families are in, the merged answer
// is cached and handed to every waiter, in the order they came.
class lookup_table {
 public:
  using waiter = std::function<void(const answer&)>;

  lookup_table(std::size_t capacity, ttl_policy policy) : cache_(capacity, policy) {}

  struct begun {
    source how = source::query;  // query: the caller must now look up both families
    answer cached;               // when how == cache
  };
  // `name` normalised. `w` is kept unless the answer is cached; it is called once, from
  // on_family(), never from begin().
  begun begin(const std::string& name, waiter w, time_point now);

  // One family's answer for a name begin() asked to look up. Returns the number of
  // waiters woken (0 until both families are in). Waiters may call begin() again.
  std::size_t on_family(const std::string& name, bool v6, answer a, time_point now);

  bool in_flight(std::string_view name) const { return pending_.find(std::string(name)) != pending_.end(); }
  std::size_t names_in_flight() const { return pending_.size(); }
  std::size_t cached_names() const { return cache_.size(); }

 private:
  struct pending {
    std::optional<answer> v4, v6;
    std::vector<waiter> waiters;
  };
  cache cache_;
  std::unordered_map<std::string, pending> pending_;
};

}  // namespace exitpool::net::dns
