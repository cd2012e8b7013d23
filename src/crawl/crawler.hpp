#pragma once
// `exitpool crawl`: follow links from seeds through the pool, politely. One process:
// fetch's shards (fetch/runner.hpp: pool, transfers, retries, writers, resume) fed by a
// frontier (crawl/frontier.hpp) instead of an input file.
//
//   coordinator (the main thread, every few ms): reports from the shards -> frontier
//     (robots.txt answers, pages done, their links: admitted once, by fingerprint) ->
//     work the frontier hands out -> the shard that owns the URL's host (its ring)
//   shards (fetch/fetcher.cpp): per host --per-host, --delay and the host's Crawl-delay;
//     each result goes through the crawl's result_hook on the shard's thread: links are
//     read there (gumbo, normalised, scope-checked) and written into the result line,
//     then reported to the coordinator.
//
// Resume: the output is the checkpoint (as for fetch). A page is done when its line is
// there; on restart the done URLs are marked seen and the links of their lines (and the
// seeds) are admitted again, so every page reachable before the kill is still reached,
// and none is written twice.
//
// Threads: run_crawl() on the main thread; it starts the shards.

#include <cstdint>
#include <string>
#include <vector>

#include "crawl/scope.hpp"
#include "crawl/url_norm.hpp"
#include "fetch/fetcher.hpp"

namespace exitpool::crawl {

struct crawl_config {
  fetch::fetch_config fetch;       // output, WARC, pool, politeness, retries, progress
  std::vector<std::string> seeds;  // URLs, or files of URLs (one per line, '#' comments)
  scope_kind scope = scope_kind::host;
  std::vector<std::string> include, exclude;  // RE2
  std::int64_t max_depth = -1;                // links followed from a seed; -1: no limit
  std::uint64_t max_pages = 0;                // 0: no limit
  std::size_t queue_memory = 200000;          // queued URLs in memory before spilling to OUTPUT.spill (0: never)
  bool ignore_robots = false;
  bool follow_nofollow = false;
  bool follow_assets = false;
  bool sitemaps = false;  // also crawl the URLs of the sitemaps robots.txt names
  normalize_options norm;
  std::size_t max_links = 10000;           // per page
  std::size_t max_html = 4 * 1024 * 1024;  // bytes of a page parsed for links
  double robots_retry_s = 60;              // robots.txt unreachable: fetched again after (doubling)
  int robots_tries = 3;                    // ... this many times, then the host is given up
  double max_crawl_delay_s = 60;           // a longer Crawl-delay is held to this
  // --frontier redis://...: a frontier shared by every worker of the crawl (shared_frontier.hpp).
  std::string frontier_url;  // empty: this process's own
  std::string crawl_name = "default";
  double lease_s = 30;
  int max_deliveries = 3;
};

// `crawl status`: prints the shared frontier's counts. Returns 0, or 1 when Redis cannot be
// reached.
int crawl_status(const std::string& frontier_url, const std::string& name);

// `crawl merge`: copies the lines of `files` to stdout, each URL's first line only (whole
// lines; a torn last line is skipped). Returns 0, or 1 when a file cannot be read.
int crawl_merge(const std::vector<std::string>& files);

// Reads the seeds (a URL, or a file of them); throws std::runtime_error naming a file that
// cannot be read. Seeds that are not crawlable URLs are reported on stderr and skipped.
std::vector<std::string> load_seeds(const std::vector<std::string>& args, const normalize_options& norm);

// Runs a whole crawl. Exit code as fetch's: 0 done, 1 fatal, 3 stopped by a signal.
// Throws std::runtime_error / std::invalid_argument on configuration errors (no usable
// seed, a bad regex, a bad pool file).
int run_crawl(const crawl_config& cfg);

}  // namespace exitpool::crawl
