#pragma once
// A crawl frontier in Redis (`crawl --frontier redis://...`), shared by every worker of a
// crawl: M processes on M machines are one crawl. Redis is reached with the fleet's client
// (fleet/redis.hpp); every change is one Lua script, so it is atomic (sent as EVALSHA: the
// scripts are loaded once per connection).
//
// State, under the prefix exitpool:crawl:NAME (one Redis, not a cluster: scripts build
// key names):
//   seen:B      dedup: 64-bit fingerprints as integers in 65,536 buckets (intset-encoded
//               while a bucket holds <= 512: ~9 bytes per URL up to ~30 million URLs)
//   q:KEY       a host's queue (KEY = scheme://authority): "deliveries|depth|hops|url"
//   ready       hosts that may be served, scored by their next allowed time (ms): a host
//               leaves it while its queue is empty or --per-host leases of it are out
//   next, delay, inflight   per host: next allowed time, delay (ms), leases not yet released.
//               Until a worker has read the host's robots.txt and published its delay
//               (Crawl-delay, else --delay), one URL of the host goes out and the host is
//               held (for a lease's time at most): politeness holds across workers from
//               the first request on.
//   lease, leases   lease id -> "FLAGKEY\nitem" (FLAG 1 once released), and by expiry time
//   queued, done, dropped, stale, seq   counters (stale: acks of leases no longer held); dead: the dead-letter list;
//   workers: heartbeats
//   robots:KEY  a host's robots.txt as the first worker to fetch it got it ("STATUS\nBODY",
//               2xx and 4xx answers of at most robots_share_max_bytes, kept an hour): the
//               other workers read it instead of asking the host again. Bounded so that a
//               crawl of a million hosts does not keep a million files in Redis for a day:
//               each worker still caches the rules it read for 24 h.
//   handed, max_pages, requeued, parked   --max-pages, shared: first deliveries taken so far
//               (counted by take, so a re-delivered lease is not counted twice; a page
//               dropped by robots.txt gives its place back, a dead-lettered one keeps it),
//               the limit (the --max-pages of the first worker to take, 0 for none: every
//               worker follows it), re-deliveries waiting in the queues (they go out even once the
//               budget is spent), and the hosts held out of ready by the spent budget
//
// Work goes out with a lease (take): it expires unless renewed (renew, while the worker
// holds it). A finished fetch releases the host's politeness slot and admits the page's
// links at once (release: discovered is not done); the lease itself is acknowledged (ack:
// done) only once the page's line is durable in the worker's output. An expired lease goes back to the front of its
// host's queue (reap, by any worker) with its delivery count raised; at --max-deliveries it goes to the dead-letter
// list instead. The crawl is over when nothing is queued and nothing is leased.
//
// Time: wall-clock milliseconds (system_clock), the same on every machine of the fleet.
// Threads: one thread (the crawl's coordinator); calls block for at most the timeout.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fleet/redis.hpp"

namespace exitpool::crawl {

// A queue entry, as stored: "deliveries|depth|hops|url". Pure.
struct queue_item {
  std::uint32_t deliveries = 0;
  std::uint32_t depth = 0;
  std::uint32_t hops = 0;
  std::string url;
};
std::string encode_item(const queue_item& i);
std::optional<queue_item> decode_item(std::string_view s);

// A URL to admit: its host key, its entry, and its dedup bucket and member. Pure.
struct admit {
  std::string key, item, bucket, member;
};
admit admit_of(std::string_view url, std::uint32_t depth, std::uint32_t hops);
// The same with the URL's fingerprint (fetch::fingerprint) already computed.
admit admit_of(std::string_view url, std::uint32_t depth, std::uint32_t hops, std::uint64_t fp);

// The largest robots.txt shared through Redis (bigger ones are fetched by each worker).
inline constexpr std::size_t robots_share_max_bytes = 64 * 1024;

// Work that may still go out: everything queued, or once --max-pages is spent (handed >=
// max_pages > 0) only the re-deliveries among it (their first delivery was counted). The
// crawl is over when this and the leases are 0. Pure.
long long open_work(long long queued, long long requeued, long long handed, long long max_pages);

struct shared_config {
  fleet::redis_url url;
  std::string name = "default";  // the crawl's name: its keys' prefix
  std::string worker;            // this worker's id (heartbeats)
  std::chrono::milliseconds lease{30000};
  int max_deliveries = 3;
  int per_host = 8;
  std::chrono::milliseconds delay{0};  // --delay: the hosts' delay until robots.txt says otherwise
  std::uint64_t max_pages = 0;         // --max-pages for the whole crawl (0: none); the first taker's wins
  std::chrono::milliseconds timeout{2000};
};

struct leased_item {
  std::uint64_t id = 0;
  std::string key;
  queue_item item;
};

struct shared_counts {
  long long queued = 0, leased = 0, done = 0, dropped = 0, dead = 0, hosts_ready = 0;
  long long stale = 0;               // acks of leases no longer held (acked before a restart, or expired)
  long long handed = 0;              // pages handed out (first deliveries; drops given back)
  long long max_pages = 0;           // --max-pages as the workers set it (0: none)
  std::vector<std::string> workers;  // alive (a heartbeat in the last 10 s)
  std::vector<std::pair<std::string, long long>> backlog;  // ready hosts' queue lengths (the first 20)
};

// A lease's release (its fetch ended: links discovered) or acknowledgement (its line is
// durable: done; links again only on a resume, where the release may never have happened).
struct ack {
  std::uint64_t id = 0;
  bool page = true;  // false: dropped (robots.txt) without a line
  std::vector<admit> links;
};

// One round trip's worth of work; everything is pipelined in one exec, in this order: seeds,
// delays, renewals, reap, heartbeat, take, then the releases and the acknowledgements (one
// script call each, however many: after the take, so a slot this worker frees goes to the
// next worker that asks), then the counts.
struct shared_round {
  std::vector<admit> seeds;
  std::vector<ack> release;
  std::vector<ack> acks;
  std::vector<std::pair<std::string, long long>> delays;  // host key -> its delay (ms), once known
  std::vector<std::uint64_t> renew;
  // robots.txt shared by the fleet: hosts whose answer this worker is about to fetch (asked
  // first), and answers it fetched (host key, "STATUS\nBODY"), kept for robots_ttl.
  std::vector<std::string> robots_get;
  std::vector<std::pair<std::string, std::string>> robots_set;
  std::chrono::milliseconds robots_ttl{std::chrono::hours(1)};
  bool reap = false;
  bool heartbeat = false;
  int take = 0;
  // Answers.
  std::vector<leased_item> taken;
  long long queued = -1, leased = -1;
  long long handed = -1;
  long long open = -1;       // open_work(): what may still go out
  long long max_pages = -1;  // the crawl's --max-pages (the first taker's; 0: none, -1: not set yet)
  std::vector<std::optional<std::string>> robots_got;  // per robots_get: the fleet's answer, if any
};

class shared_frontier {
 public:
  explicit shared_frontier(shared_config c);
  ~shared_frontier();
  shared_frontier(const shared_frontier&) = delete;
  shared_frontier& operator=(const shared_frontier&) = delete;

  // Runs `r` in one round trip (connecting first when needed). On failure the error says
  // why and nothing of `r`'s answers is set; the caller keeps its work and tries again
  // later (scripts are idempotent where a retry can repeat them: release, admissions).
  fleet::redis_error run(shared_round& r, std::int64_t now_ms);
  // `crawl status`.
  fleet::redis_error counts(shared_counts& out, std::int64_t now_ms);

  static std::int64_t now_ms();

 private:
  // The commands are views: what they point at stays alive until the call returns.
  fleet::redis_error exec(std::vector<std::vector<std::string_view>> cmds, std::vector<fleet::reply>& out);

  shared_config cfg_;
  std::string prefix_;
  struct io;
  std::unique_ptr<io> io_;
};

}  // namespace exitpool::crawl
