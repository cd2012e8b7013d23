#pragma once
// Internal to `fetch`: what the input reader, the shards and the main thread share, and
// the shard interface run_fetch() drives. A shard is one thread with its own libcurl
// multi handle, host scheduler and pool::driver; the URLs of a host all go to one shard
// (fetcher.cpp has the shard's flow, run.cpp the run around it).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fetch/fetcher.hpp"
#include "fetch/progress.hpp"
#include "fetch/result_log.hpp"
#include "fetch/spsc_ring.hpp"
#include "pool/ban_policy.hpp"
#include "pool/pool.hpp"
#include "pool/state.hpp"

namespace exitpool::fetch {

inline pool::clock::duration from_seconds(double s) {
  return std::chrono::duration_cast<pool::clock::duration>(std::chrono::duration<double>(std::max(0.0, s)));
}

// What `crawl` adds to a URL (fetch leaves it as is).
struct crawl_tag {
  std::uint32_t depth = 0;
  std::uint8_t hops = 0;              // redirects followed to reach the URL
  bool robots = false;                // the host's robots.txt: fetched with result_hook::robots_options
  bool sitemap = false;               // a sitemap: fetched like robots.txt
  pool::clock::duration min_delay{};  // the host's Crawl-delay: at least this between starts to it
  std::uint64_t lease = 0;            // the crawl's id for this piece of work (a shared frontier's lease)
};

// Where a result line went: the `seq`-th line of shard `shard`. It is in the output file
// once that shard's shard_counters::lines_written reaches `seq`.
struct line_ref {
  int shard = 0;
  std::uint64_t seq = 0;
};

// What the reader hands a shard.
struct input_item {
  std::string url;
  std::string host;
  std::uint64_t fp = 0;
  bool valid = false;
  crawl_tag tag;
};

struct transfer_options;
struct response_capture;
struct fetch_result;

// Sees every URL's final result on its shard's thread, before its line is written: how
// `crawl` reads links from pages and learns robots.txt. Called from every shard's thread
// at once: implementations synchronise what they share.
class result_hook {
 public:
  virtual ~result_hook() = default;
  // The transfer options for robots.txt fetches, given the pages' (at shard start).
  virtual void robots_options(transfer_options& opts) const = 0;
  // The result `r` of r.url (to `host`, as tagged; its body is `cap.body`, `cap` is
  // empty when no transfer completed). May add members to the line (r.extra). Returns
  // false: write no line. `line` says where the line will be, if written.
  virtual bool on_result(std::string_view host, const crawl_tag& tag, const response_capture& cap, fetch_result& r,
                         line_ref line) = 0;
};

class shard;

// Shared by the reader, the shards and the main thread.
struct shared_state {
  explicit shared_state(const fetch_config& c) : cfg(c) {}
  const fetch_config& cfg;
  std::shared_ptr<const pool::snapshot> snap;
  std::unique_ptr<pool::local_state> state;  // the state seam (pool/state.hpp)
  pool::ban_policy ban_policy;               // --ban-status, --ban-pattern, --ban-time (as serve's)
  result_log* log = nullptr;
  result_hook* hook = nullptr;  // crawl only
  std::vector<shard*> shards;
  // Requests in flight over all shards, against --concurrency: one host's URLs all live
  // in one shard, so a per-shard share of the limit would idle the others' share.
  alignas(64) std::atomic<int> inflight_total{0};
  std::atomic<bool> input_done{false};
  std::atomic<bool> stopping{false};  // SIGINT/SIGTERM: start nothing new, finish what is in flight
  std::atomic<bool> fatal{false};
  std::atomic<bool> fatal_claimed{false};
  std::string fatal_msg;  // written once, by whoever claims fatal_claimed
  // Reader counters.
  alignas(64) std::atomic<std::uint64_t> lines_read{0};
  std::atomic<std::uint64_t> lines_ignored{0};  // blank or comment
  std::atomic<std::uint64_t> skipped{0};        // already in the output, or a duplicate

  void set_fatal(std::string msg) {
    if (!fatal_claimed.exchange(true)) {
      fatal_msg = std::move(msg);
    }
    fatal.store(true);
  }
};

class shard {
 public:
  virtual ~shard() = default;
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  // Runs until the input is done and every URL has its line, or a stop or fatal error.
  // The shard's own thread.
  virtual void run() = 0;
  // Interrupts the shard's wait. Any thread.
  virtual void wake() = 0;

  // Reader side: hands `item` over when the ring has room, waking the shard if it waits
  // for input; false (item untouched) when the ring is full. The reader's thread only.
  bool offer(input_item& item) {
    if (!ring.try_push(std::move(item))) {
      if (hungry.exchange(false)) {
        wake();
      }
      return false;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (hungry.load(std::memory_order_relaxed) && hungry.exchange(false)) {
      wake();
    }
    return true;
  }

  spsc_ring<input_item> ring;
  alignas(64) std::atomic<bool> hungry{false};
  std::atomic<bool> wants_slot{false};  // stopped dispatching at --concurrency: wake me when a slot frees

  shard_counters counters;  // read by the main thread while this shard runs
  result_tally tally;       // read after the thread has joined
  std::atomic<bool> finished{false};

 protected:
  explicit shard(std::size_t ring_capacity) : ring(ring_capacity) {}
};

// Shard `index` of g.shards (g.snap and g.log set). Throws when libcurl cannot start.
std::unique_ptr<shard> make_shard(shared_state& g, int index, std::size_t ring_capacity);

}  // namespace exitpool::fetch
