#pragma once
// Gateway metrics for a shard-per-core server.
//
// Each shard owns one `shard_metrics` block and is its only writer: the session
// coroutines of that shard call the inline `on_*` hooks below. The counters are
// relaxed atomics updated with load+store (a single writer needs no locked
// read-modify-write), so the admin endpoint on another thread may read them at
// any time without a data race; a scrape sees each counter as of some recent
// moment, never a torn value. `render_prometheus` (admin/prometheus.hpp) sums the
// blocks of a `metrics_registry` at scrape time.
//
// Precondition for every `on_*` hook: called only from the thread that runs the
// owning shard. Calling them from two threads loses increments (never UB).
// No Asio here: this header is cheap to include.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "net/dns_cache.hpp"
#include "pool/failure.hpp"
#include "pool/sticky.hpp"

namespace exitpool::admin {

// How a client connection talks to us (after sniffing its first bytes). An HTTP
// connection whose first request is CONNECT counts as `connect`.
enum class client_protocol : std::uint8_t { http, connect, socks5 };
inline constexpr std::size_t client_protocol_count = 3;
const char* protocol_name(client_protocol p);

// What became of one client request (an HTTP request, a CONNECT, a SOCKS5 CONNECT).
enum class request_outcome : std::uint8_t {
  ok,            // an exit was dialed and the response/tunnel was delivered
  client_error,  // bad request, auth refused, bad target
  no_exit,       // no exit matches the filters
  dial_failed,   // every exit tried failed (or the exit's answer was unusable)
  timeout,       // a dial or the upstream response timed out
  no_capacity,   // exits match, but none had capacity within the queue timeout (or the queue was full)
  refused,       // the access policy refused the target
};
inline constexpr std::size_t request_outcome_count = 7;
const char* outcome_name(request_outcome o);
// The metrics edge of the error vocabulary (pool/failure.hpp): what a request that
// ended in `f` counts as.
request_outcome outcome_of(pool::failure f);

// RFC 9209 Proxy-Status error types a dial can end in: the label values of
// exitpool_dial_failures_total (pool::proxy_status_name of each dial failure).
inline constexpr std::array<std::string_view, 12> dial_error_types = {
    "dns_error",
    "dns_timeout",
    "connection_refused",
    "connection_timeout",
    "destination_unavailable",
    "destination_ip_unroutable",
    "tls_protocol_error",
    "tls_certificate_error",
    "proxy_internal_error",
    "http_protocol_error",
    "connection_terminated",
    "destination_ip_prohibited",
};
// Index into dial_error_types of a failed dial's failure (a table, no string search);
// a failure without its own label counts as proxy_internal_error.
std::size_t dial_error_index(pool::failure f);

// Upper bounds (seconds) of the latency histograms (dials, DNS lookups); +Inf is implicit.
inline constexpr std::array<double, 13> latency_buckets = {.001, .0025, .005, .01, .025, .05, .1,
                                                           .25,  .5,    1,    2.5, 5,    10};
// The same bounds as Prometheus `le` label values.
inline constexpr std::array<std::string_view, 13> latency_bucket_labels = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"};

// A monotonically increasing counter with one writer and any number of readers.
class counter {
 public:
  void add(std::uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// A gauge (may go up and down) with one writer.
class gauge {
 public:
  void add(std::int64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::int64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

// A latency histogram over latency_buckets with one writer: non-cumulative bucket
// counts (the last is +Inf), a count and a sum in nanoseconds.
struct latency_histogram {
  std::array<counter, latency_buckets.size() + 1> buckets;
  counter count;
  counter sum_ns;

  void observe(double seconds) {
    if (!(seconds >= 0)) {
      seconds = 0;  // NaN or a clock step backwards
    }
    std::size_t i = 0;
    while (i < latency_buckets.size() && seconds > latency_buckets[i]) {
      ++i;
    }
    buckets[i].add();
    count.add();
    sum_ns.add(static_cast<std::uint64_t>(seconds * 1e9));
  }
};

// The sums of latency_histograms at one scrape.
struct histogram_totals {
  std::array<std::uint64_t, latency_buckets.size() + 1> buckets{};  // non-cumulative
  std::uint64_t count = 0;
  std::uint64_t sum_ns = 0;
  void add(const latency_histogram& h);
};

// Counters of one shard. Aligned to a cache line so two shards' blocks never
// share one (false sharing); allocate each with std::make_unique.
struct alignas(64) shard_metrics {
  std::array<counter, client_protocol_count> accepted;                                     // by protocol
  std::array<std::array<counter, request_outcome_count>, client_protocol_count> requests;  // [protocol][outcome]
  std::array<counter, 5> http_responses;  // 1xx..5xx responses sent to HTTP clients
  counter dial_attempts;
  std::array<counter, dial_error_types.size()> dial_failures;   // by RFC 9209 error type
  counter retries;                                              // dials after the first for one request
  counter bans;                                                 // (exit, host) bans imposed
  std::array<counter, pool::session_wait_count> session_waits;  // sticky requests that waited, by cause
  std::array<counter, pool::session_move_count> session_moves;  // sticky sessions that left their exit
  counter bytes_client_to_upstream;
  counter bytes_upstream_to_client;
  gauge active_tunnels;
  latency_histogram dial_latency;
  // DNS lookups of names by the shard's resolver (IP literals are not looked up).
  std::array<counter, net::dns::source_count> dns_lookups;   // by how answered: cache, coalesced, query
  std::array<counter, net::dns::status_count> dns_failures;  // by failure (the ok slot stays 0)
  latency_histogram dns_latency;                             // hits included

  // A client connection was accepted and its protocol is known.
  void on_accept(client_protocol p) { accepted[static_cast<std::size_t>(p)].add(); }

  // A request finished with `o`.
  void on_request(client_protocol p, request_outcome o) {
    requests[static_cast<std::size_t>(p)][static_cast<std::size_t>(o)].add();
  }

  // An HTTP response with `status` was sent to a client (forwarded or generated).
  // Statuses outside 100..599 are not counted.
  void on_http_response(int status) {
    if (status >= 100 && status < 600) {
      http_responses[static_cast<std::size_t>(status / 100 - 1)].add();
    }
  }

  // One dial through an exit finished with `error` (none on success). Success and
  // failure both feed the latency histogram.
  void on_dial(pool::failure error, double seconds) {
    dial_attempts.add();
    if (error != pool::failure::none) {
      dial_failures[dial_error_index(error)].add();
    }
    dial_latency.observe(seconds);
  }

  // A lookup of a name finished after `seconds`: answered `how`, with `st`.
  void on_dns_lookup(net::dns::source how, net::dns::status st, double seconds) {
    dns_lookups[static_cast<std::size_t>(how)].add();
    if (st != net::dns::status::ok) {
      dns_failures[static_cast<std::size_t>(st)].add();
    }
    dns_latency.observe(seconds);
  }

  // Another exit is tried for the same request after a failed dial.
  void on_retry() { retries.add(); }

  // A response through an exit got the exit banned for its target host.
  void on_ban() { bans.add(); }

  // A sticky request waits for its session's busy exit / a session left its exit.
  void on_session_wait(pool::session_wait w) { session_waits[static_cast<std::size_t>(w)].add(); }
  void on_session_move(pool::session_move m) { session_moves[static_cast<std::size_t>(m)].add(); }

  // Bytes relayed (tunnels and forwarded requests/responses).
  void on_bytes(std::uint64_t client_to_upstream, std::uint64_t upstream_to_client) {
    bytes_client_to_upstream.add(client_to_upstream);
    bytes_upstream_to_client.add(upstream_to_client);
  }

  void on_tunnel_open() { active_tunnels.add(1); }
  void on_tunnel_close() { active_tunnels.add(-1); }
};

// Every shard's block, indexed by shard number. Built once before the shards
// start; the vector is not resized afterwards (readers iterate it unlocked).
struct metrics_registry {
  std::vector<std::unique_ptr<shard_metrics>> shards;
  // Pool reloads (SIGHUP, --watch): written by the main thread only.
  std::atomic<std::uint64_t> pool_reloads{0};
  std::atomic<std::uint64_t> pool_reloads_refused{0};
  std::atomic<std::int64_t> pool_reload_ns{0};  // how long the last successful one took
  // Shared state (fleet/redis_state.hpp), written by its sync thread: whether the backend
  // is reachable (always 1 for the in-process state) and the live gateways (1 alone).
  std::atomic<int> state_backend_up{1};
  std::atomic<int> fleet_gateways{1};

  explicit metrics_registry(std::size_t shard_count = 0) {
    shards.reserve(shard_count);
    for (std::size_t i = 0; i < shard_count; ++i) {
      shards.push_back(std::make_unique<shard_metrics>());
    }
  }
  shard_metrics& shard(std::size_t i) { return *shards.at(i); }
};

// Plain sums over every shard at one scrape.
struct metrics_totals {
  std::array<std::uint64_t, client_protocol_count> accepted{};
  std::array<std::array<std::uint64_t, request_outcome_count>, client_protocol_count> requests{};
  std::array<std::uint64_t, 5> http_responses{};
  std::uint64_t dial_attempts = 0;
  std::array<std::uint64_t, dial_error_types.size()> dial_failures{};
  std::uint64_t retries = 0;
  std::uint64_t bans = 0;
  std::array<std::uint64_t, pool::session_wait_count> session_waits{};
  std::array<std::uint64_t, pool::session_move_count> session_moves{};
  std::uint64_t bytes_client_to_upstream = 0;
  std::uint64_t bytes_upstream_to_client = 0;
  std::int64_t active_tunnels = 0;
  histogram_totals dial_latency;
  std::array<std::uint64_t, net::dns::source_count> dns_lookups{};
  std::array<std::uint64_t, net::dns::status_count> dns_failures{};
  histogram_totals dns_latency;
};

// Any thread. Each counter is read once; the sums are as consistent as the
// shards' relaxed writes allow (a scrape racing a dial may see the bucket
// incremented but not yet the count: render_prometheus derives the count from
// the buckets so the histogram stays self-consistent).
metrics_totals aggregate(const metrics_registry& reg);

}  // namespace exitpool::admin
