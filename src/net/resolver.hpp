#pragma once
// A shard's resolver: host names to addresses, asynchronously on the shard's own
// event loop. c-ares (net/ares.hpp) sends the queries; its sockets are watched by the
// shard's io_context (posix::stream_descriptor waits) and its retries by a timer, so a
// lookup costs no thread and a slow name holds up nothing but its own lookups.
//
// Answers are cached per shard (net/dns_cache.hpp says why per shard): TTLs clamped
// to [min_ttl, max_ttl], NXDOMAIN / NODATA / SERVFAIL / no server answering kept for negative_ttl,
// concurrent lookups of one name share one query, at most cache_size names (LRU).
// Each lookup waits at most config::timeout, whatever the query it joined is doing (c-ares
// itself gives a query about that long: two tries per server); an answer that comes after
// a waiter gave up still fills the cache for the next. IP literals are answered at once,
// without a lookup.
//
// Threading: made, used and destroyed on the thread that runs `ex`'s io_context.
// Destroy it before that io_context, and only once it no longer runs (lookups still
// waiting are then never resumed).

#include <memory>
#include <string>
#include <vector>

#include "net/dns_cache.hpp"
#include "net/stream.hpp"

namespace exitpool::admin {
struct shard_metrics;
}

namespace exitpool::net {

struct resolve_result {
  dns::status st = dns::status::internal;
  std::vector<asio::ip::address> addresses;  // when ok: IPv4 first, then IPv6
  bool cached = false;                       // answered from the cache (or an IP literal)
};

class resolver {
 public:
  // `metrics` (nullable): the shard's block, counted into by every lookup of a name.
  // Throws std::runtime_error when c-ares cannot start or the servers are invalid.
  resolver(asio::any_io_executor ex, const dns::config& cfg, admin::shard_metrics* metrics = nullptr);
  ~resolver();
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  // The addresses of `host`: an IP literal (brackets allowed for IPv6), or a name.
  awaitable<resolve_result> resolve(std::string host);

  // Names in the cache and in flight (tests, debugging).
  std::size_t cached_names() const;
  std::size_t names_in_flight() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// "cannot resolve NAME: no such name (NXDOMAIN)" — the dial failure's detail.
std::string describe_failure(const std::string& host, dns::status st);

}  // namespace exitpool::net
