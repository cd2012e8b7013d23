#pragma once
// The crawl frontier of one process: what has been discovered, what waits per host, and
// what may be handed to the fetch shards now.
//
//   - Dedup: every URL ever admitted (and every URL found done in the output on resume)
//     is one 64-bit fingerprint in a fetch::url_set (8-23 bytes per URL: 10 million URLs
//     in at most ~230 MiB, typically 128 MiB). Two different URLs share a fingerprint with
//     probability ~n^2/2^65 (~3e-6 for 10 million): the second would be skipped.
//   - Per-host queues (key: scheme://authority, robots.txt's scope), FIFO: breadth-first
//     within a host.
//   - robots.txt gates a host: its first URL makes the frontier hand out a robots.txt
//     fetch; the host's pages wait until its answer is known (robots_fetched). Rules are
//     cached for robots_ttl, then fetched again before the next page. Unreachable (5xx,
//     429, no answer): nothing is handed out; robots.txt is fetched again after
//     robots_retry (doubling), and after robots_tries failures the host's queue is
//     dropped (counted). Disallowed URLs are dropped (counted) when their turn comes.
//   - Politeness here is the hand-out window: at most `window` URLs of a host are with the
//     shards at once (the shard's host_scheduler then holds --per-host, --delay and the
//     host's Crawl-delay, fetch/scheduler.hpp); the rest stays here, so memory and
//     breadth-first order are the frontier's.
//   - --max-pages: pages handed out (plus those done before a resume) stop at max_pages.
//   - Memory: queued URLs are kept in memory up to queue_memory of them (all hosts); past
//     that, each host keeps its first `window` in memory and the rest goes to a spill file
//     in blocks (crawl/spill.hpp), read back in order as the host drains.
//
// Pure: time is a parameter, no I/O. One thread (the crawl's coordinator).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crawl/robots.hpp"
#include "crawl/spill.hpp"
#include "fetch/url_set.hpp"
#include "pool/pool.hpp"

namespace exitpool::crawl {

using pool::time_point;

struct frontier_config {
  int window = 16;                       // URLs of one host with the shards at once
  std::uint64_t max_pages = 0;           // 0: no limit
  std::string agent = "exitpool-crawl";  // robots.txt product token
  bool ignore_robots = false;
  bool sitemaps = false;  // fetch the sitemaps robots.txt names (at most 10 per host, 1,000 in all)
  pool::clock::duration robots_ttl = std::chrono::hours(24);
  pool::clock::duration robots_retry = std::chrono::seconds(60);
  int robots_tries = 3;
  double max_crawl_delay_s = 60;  // a larger Crawl-delay is clamped to this
  // Queued URLs held in memory (all hosts) before hosts spill to `spill_path`; 0: never
  // spill. The file is created (emptied) when the frontier is made, if queue_memory > 0.
  std::size_t queue_memory = 0;
  std::string spill_path;
  std::size_t spill_block = 64;  // URLs per block written
};

// One unit of work for a shard.
struct work_item {
  std::string url;
  std::string key;   // scheme://authority (the frontier's host key)
  std::string host;  // host without port (the shards' politeness key)
  std::uint32_t depth = 0;
  std::uint8_t hops = 0;     // redirects followed to reach this URL
  bool robots = false;       // this is the host's robots.txt
  std::uint64_t lease = 0;   // a shared frontier's lease on this URL (0: none)
  bool sitemap = false;      // this is a sitemap (its URLs are admitted at depth 0)
  double crawl_delay_s = 0;  // the host's Crawl-delay (0: none)
};

struct frontier_counts {
  std::uint64_t discovered = 0;          // URLs admitted (unique)
  std::uint64_t handed = 0;              // pages handed out (and done before a resume)
  std::uint64_t disallowed = 0;          // dropped by robots.txt
  std::uint64_t robots_unreachable = 0;  // dropped: robots.txt stayed unreachable
  std::uint64_t queued = 0;              // waiting here
  std::uint64_t spilled = 0;             // of those, in the spill file now
  std::uint64_t spilled_total = 0;       // URLs ever written to the spill file
  std::uint64_t outstanding = 0;         // with the shards
};

class frontier {
 public:
  explicit frontier(frontier_config c, std::size_t expected_urls = 1 << 16);

  // Admits a normalised URL (scope already checked); false when it was seen before.
  bool add(std::string url, std::uint32_t depth, std::uint8_t hops);
  // Queues a URL leased from a shared frontier (which did the dedup): no dedup here, and
  // URLs dropped by robots.txt are kept for take_dropped() (their leases are acknowledged).
  void add_leased(work_item w);
  // A sitemap (named by robots.txt, or by a sitemap index) to fetch; false when it was
  // seen before or the bound (1,000) is reached.
  bool add_sitemap(std::string_view url);
  // A sitemap handed out has been fetched (its URLs are add()ed by the caller).
  void sitemap_fetched() { sitemaps_out_ -= sitemaps_out_ > 0 ? 1 : 0; }

  // The Crawl-delay (seconds, clamped) robots.txt gave host `key`; 0 when none or unknown.
  double crawl_delay(std::string_view key) const;
  // The leased URLs robots.txt dropped since the last call.
  void take_dropped(std::vector<work_item>& out) { out.swap(dropped_); }

  // Hands out what may go to the shards at `now`: robots.txt fetches and pages, appended
  // to `out`.
  void next(time_point now, std::vector<work_item>& out);

  // A page handed out has its result line (or was given up).
  void page_done(std::string_view key);
  // The robots.txt of `key` was fetched: `status` 0 when no response came.
  void robots_fetched(std::string_view key, long status, std::string_view body, time_point now);

  // When next() may have something new to hand out without any other event (a robots.txt
  // retry or expiry); nullopt when nothing waits on time.
  std::optional<time_point> next_wake() const;

  // Nothing queued that may still go out, nothing with the shards: the crawl is over.
  bool finished() const;

  frontier_counts counts() const;
  // The dedup set, for the output scan of a resume to fill before anything is added.
  fetch::url_set& seen() { return seen_; }
  // `n` pages were done before this run (they count against max_pages).
  void count_done(std::uint64_t n) { handed_ += n; }
  std::size_t memory_bytes() const { return seen_.memory_bytes(); }

 private:
  enum class robots_state { unknown, fetching, known };
  struct host {
    std::string key, host;
    spill_queue queue;
    int outstanding = 0;
    robots_state state = robots_state::unknown;
    robots_policy policy;
    time_point valid_until{};  // known: refetch after; unreachable: retry after
    int failures = 0;
    bool in_dirty = false;
    bool sitemaps_read = false;
  };

  host& host_of(std::string_view key, std::string_view hostname);
  double delay_of(const host& h) const;
  void mark_dirty(host& h);
  void serve(host& h, time_point now, std::vector<work_item>& out);
  void push(host& h, queued_url u);
  queued_url pop(host& h);
  work_item work_of(const host& h, queued_url u) const;

  frontier_config cfg_;
  fetch::url_set seen_;
  std::unique_ptr<spill_file> spill_;
  std::unordered_map<std::string_view, std::unique_ptr<host>> hosts_;  // keys: views of host::key
  std::vector<work_item> dropped_;
  std::vector<work_item> sitemap_queue_;                 // sitemaps to hand out
  std::unordered_map<std::string, bool> sitemaps_seen_;  // bounded: 1,000
  std::uint64_t sitemaps_out_ = 0;  // queued or being fetched                    // leased URLs dropped by robots.txt
  std::vector<host*> dirty_;        // hosts that may have something to hand out
  std::vector<std::pair<time_point, host*>> timers_;  // min-heap: robots retries and expiries
  std::uint64_t handed_ = 0, disallowed_ = 0, unreachable_ = 0, queued_ = 0, outstanding_ = 0, robots_out_ = 0;
  std::uint64_t spilled_ = 0, spilled_total_ = 0;
};

}  // namespace exitpool::crawl
