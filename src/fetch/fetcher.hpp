#pragma once
// `exitpool fetch`: the batch fetcher. URLs are streamed from the input, sharded by a
// hash of their host (so per-host politeness state lives in one shard, lock-free),
// and fetched by N shards, each one thread with its own libcurl multi handle and its
// own pool::driver. Exits are chosen, reported on, banned and rate-limited through the
// same pool API as the gateway's (pool/attempt.hpp), and bans are judged by the same
// pool::ban_policy built from the same options (pool/ban_policy.hpp).
//
// Threads: run_fetch() starts one input reader, N shards, and uses the calling
// thread for progress, periodic fsync and the final summary.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "net/dns_cache.hpp"
#include "pool/pool.hpp"
#include "pool/selector.hpp"

namespace exitpool::fetch {

struct fetch_config {
  std::string pool_file;  // empty: one direct:// exit (the default route)
  std::string input = "-";
  std::string output;
  std::string state_dir;                    // empty: OUTPUT.state
  std::string bodies_dir;                   // non-empty: one file per body there, not inline
  std::string warc_path;                    // non-empty: also a WARC 1.1 file (gzip per record) of every response
  std::size_t inline_body_max = 64 * 1024;  // bytes kept inline; 0: no body in the output
  std::size_t max_body = 16 * 1024 * 1024;  // bytes kept per body with --bodies
  bool resume = true;                       // false: --no-resume (truncate the output)
  std::size_t min_keep = 0;                 // crawl: body bytes kept at least (links are read from them)

  int threads = 0;             // 0: hardware concurrency
  int concurrency = 256;       // in flight, all shards together
  int per_host = 8;            // in flight per target host
  double delay_s = 0;          // between request starts to one host
  bool auto_throttle = false;  // adapt each host's in-flight window (1..per_host) to its latency and errors
  int retries = 3;             // further attempts after the first, each on another exit when one remains
  double backoff_s = 0.25;     // first retry's base delay; doubles per retry, jittered
  double backoff_max_s = 30;
  double timeout_s = 30;  // per attempt
  double connect_timeout_s = 10;
  double queue_timeout_s = 300;  // longest wait for an exit with capacity (bans, rate limits)

  pool::filter filter;
  pool::policy policy = pool::policy::round_robin;
  bool session_per_host = false;  // sticky: the same exit for every request to a host
  pool::limits_config limits;     // --per-exit-rate, --per-exit-host-rate, --per-exit-concurrency
  pool::health_config health;
  std::vector<int> ban_statuses{403, 429, 503};
  std::vector<std::string> ban_patterns;  // ECMAScript regex over status line, headers, body start
  double ban_duration_s = 300;            // when the ban response has no Retry-After

  std::string user_agent = "exitpool-fetch/0.1";
  int max_redirects = 5;
  bool insecure = false;  // do not verify targets' TLS certificates
  std::string ca_file;    // extra CA bundle for targets and https:// exits
  bool http2 = true;
  net::dns::config dns;  // --dns-*: targets of direct and socks5:// exits (fetch/transfer.hpp)

  double progress_interval_s = 0;  // 0: 0.25 s on a terminal, 5 s otherwise
  double fsync_interval_s = 1;
  bool quiet = false;  // no progress lines (the summary is still printed)
};

// Runs a whole fetch. Returns the process exit code: 0 when every input URL has a
// result line (errors included), 1 on a fatal error (output not writable, input
// unreadable). Throws std::runtime_error on configuration errors (bad pool file...).
int run_fetch(const fetch_config& cfg);

}  // namespace exitpool::fetch
