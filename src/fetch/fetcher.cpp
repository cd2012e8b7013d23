#include "fetch/fetcher.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "fetch/classify.hpp"
#include "fetch/input.hpp"
#include "fetch/progress.hpp"
#include "fetch/result.hpp"
#include "fetch/result_log.hpp"
#include "fetch/scheduler.hpp"
#include "fetch/spsc_ring.hpp"
#include "fetch/stats.hpp"
#include "fetch/transfer.hpp"
#include "fetch/url_set.hpp"
#include "fetch/warc.hpp"
#include "fetch/writer.hpp"
#include "pool/ban.hpp"
#include "pool/pool_file.hpp"
#include "pool/rate_limit.hpp"
#include "pool/tier.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::fetch {

namespace {

using pool::clock;
using pool::time_point;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

template <class D>
double seconds_of(D d) {
  return std::chrono::duration<double>(d).count();
}

clock::duration from_seconds(double s) {
  return duration_cast<clock::duration>(std::chrono::duration<double>(std::max(0.0, s)));
}

// What the reader hands a shard.
struct input_item {
  std::string url;
  std::string host;
  std::uint64_t fp = 0;
  bool valid = false;
};

class shard;

// Shared by the reader, the shards and the main thread.
struct shared_state {
  explicit shared_state(const fetch_config& c) : cfg(c) {}
  const fetch_config& cfg;
  std::shared_ptr<const pool::snapshot> snap;
  pool::ban_table bans;
  std::unique_ptr<pool::host_limits> host_rates;
  pool::tier_memory tiers;
  std::vector<std::regex> ban_patterns;
  result_log* log = nullptr;
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

// One URL in a shard, from the ring until its line is written.
struct job {
  std::string url;
  std::string host;
  std::uint64_t fp = 0;
  int attempts = 0;
  int family = 0;  // 4 or 6 when the host is an IP literal
  std::vector<const pool::exit*> tried;
  time_point queue_deadline{};  // set at the first "no capacity" wait
  std::string history;          // "exit: what failed; ..." over the attempts
  // The attempt in flight.
  pool::exit* exit = nullptr;
  pool::lease lease;
  bool probe = false;
  int tier = 0;
  response_capture cap;  // filled by libcurl's callbacks

  void reset_attempt() {
    exit = nullptr;
    lease.release();
    probe = false;
  }
};

bool is_proxy(const proto::exit_spec& s) {
  return s.scheme != proto::exit_scheme::direct;
}

transfer_options transfer_options_of(const fetch_config& cfg) {
  transfer_options o;
  o.user_agent = cfg.user_agent;
  o.max_redirects = cfg.max_redirects;
  o.timeout_ms = static_cast<long>(cfg.timeout_s * 1000);
  o.connect_timeout_ms = static_cast<long>(cfg.connect_timeout_s * 1000);
  o.insecure = cfg.insecure;
  o.ca_file = cfg.ca_file;
  o.http2 = cfg.http2;
  o.warc = !cfg.warc_path.empty();
  o.keep = !cfg.bodies_dir.empty() ? cfg.max_body : cfg.inline_body_max;
  if (o.warc) {
    o.keep = std::max(o.keep, cfg.max_body);
  }
  if (!cfg.ban_patterns.empty()) {
    o.keep = std::max<std::size_t>(o.keep, 16 * 1024);  // ban patterns look at the body's start
  }
  return o;
}

class shard {
 public:
  shard(shared_state& g, int index, std::size_t ring_capacity)
      : ring(ring_capacity),
        g_(g),
        index_(index),
        local_cap_(static_cast<std::size_t>(std::max(1024, g.cfg.concurrency * 2))),
        selector_(g.cfg.policy, 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(index + 1)),
        rng_(static_cast<std::uint64_t>(index) * 7919 + 17),
        sched_(scheduler_config{g.cfg.per_host, from_seconds(g.cfg.delay_s), g.cfg.auto_throttle}),
        lines_(*g.log),
        opts_(transfer_options_of(g.cfg)),
        transfers_(g.snap->size()) {
    tally.by_exit.assign(g.snap->size(), 0);
    // A direct exit bound to an IPv4 source cannot reach an IPv6 target, and the other way
    // round: such pairs are excluded from the pick, not tried and counted as failures.
    for (const auto& e : g.snap->exits()) {
      if (e->spec().scheme == proto::exit_scheme::direct && !e->spec().host.empty()) {
        const int fam = literal_family(e->spec().host);
        (fam == 4 ? v4_exits_ : v6_exits_).push_back(e.get());
      }
    }
  }
  // URLs left undone by a stop (SIGTERM, a fatal error) just go: no line, the next run does them.
  ~shard() = default;
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  // Reader side.
  spsc_ring<input_item> ring;
  alignas(64) std::atomic<bool> hungry{false};
  std::atomic<bool> wants_slot{false};  // stopped dispatching at --concurrency: wake me when a slot frees
  // Any thread. Should libcurl fail to signal, the shard wakes at its poll timeout (100 ms).
  void wake() { (void)transfers_.wakeup(); }

  shard_counters counters;  // read by the main thread while this shard runs
  result_tally tally;       // read after the thread has joined
  std::atomic<bool> finished{false};

  void run() {
    try {
      loop();
    } catch (const std::exception& e) {
      g_.set_fatal(fmt::format("shard {}: {}", index_, e.what()));
    }
    flush();
    finished.store(true);
  }

 private:
  void loop() {
    auto last_sweep = clock::now();
    for (;;) {
      if (g_.fatal.load(std::memory_order_relaxed)) {
        return;
      }
      if (g_.stopping.load(std::memory_order_relaxed)) {
        // Drain: the transfers in flight finish and are written; queued URLs stay undone
        // (no line), so the next run fetches them.
        transfers_.perform();
        drain_only_ = true;
        drain();
        flush();
        if (inflight_ == 0) {
          return;
        }
        transfers_.poll(milliseconds(100));
        continue;
      }
      pull();
      auto now = clock::now();
      sched_.wake_due(now);
      dispatch(now);
      transfers_.perform();
      drain();
      dispatch(clock::now());
      flush();
      if (g_.input_done.load(std::memory_order_acquire) && ring.empty() && local_ == 0) {
        return;
      }
      now = clock::now();
      if (now - last_sweep > std::chrono::seconds(1)) {
        sched_.sweep(now);
        last_sweep = now;
      }
      // Sleep until a socket is ready, libcurl's own timeout, our next timer, or a wakeup.
      auto wait = milliseconds(100);
      if (auto at = sched_.next_wake()) {
        wait = std::min(wait, duration_cast<milliseconds>(*at - now) + milliseconds(1));
      }
      if (local_ < local_cap_) {
        hungry.store(true);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (!ring.empty()) {
          wait = milliseconds(0);
        }
      }
      if (sched_.has_runnable() && g_.inflight_total.load(std::memory_order_relaxed) < g_.cfg.concurrency) {
        wait = milliseconds(0);
      }
      transfers_.poll(wait);
      hungry.store(false, std::memory_order_relaxed);
    }
  }

  void pull() {
    while (local_ < local_cap_) {
      auto item = ring.try_pop();
      if (!item) {
        return;
      }
      ++local_;
      auto j = std::make_unique<job>();
      j->url = std::move(item->url);
      j->host = std::move(item->host);
      j->fp = item->fp;
      j->family = item->valid ? literal_family(j->host) : 0;
      if (!item->valid) {
        fetch_result r;
        r.url = j->url;
        r.error = "invalid url: expected http:// or https:// with a host";
        finish(std::move(j), r);
        continue;
      }
      const std::string_view host = j->host;  // the job's own string: it does not move
      sched_.push(host, std::move(j));
    }
  }

  bool take_slot() {
    if (g_.inflight_total.fetch_add(1, std::memory_order_relaxed) < g_.cfg.concurrency) {
      return true;
    }
    wants_slot.store(true, std::memory_order_relaxed);
    release_slot();
    return false;
  }

  void release_slot() {
    if (g_.inflight_total.fetch_sub(1, std::memory_order_relaxed) >= g_.cfg.concurrency) {
      for (shard* other : g_.shards) {
        if (other != this && other->wants_slot.load(std::memory_order_relaxed) && other->wants_slot.exchange(false)) {
          other->wake();
        }
      }
    }
  }

  // Offers ready hosts' jobs to start(), each under a --concurrency slot.
  void dispatch(time_point now) {
    sched_.dispatch(now, [&](std::unique_ptr<job>& j) {
      if (!take_slot()) {
        return start_result::no_slot();
      }
      const start_result r = start(j, now);
      if (r.k == start_result::kind::started) {
        ++inflight_;
        counters.inflight.store(inflight_, std::memory_order_relaxed);
      } else {
        release_slot();
      }
      return r;
    });
  }

  // The pool's answer to "an exit for this job, now".
  struct exit_grant {
    enum class kind { attempt, wait, refused };
    kind k = kind::refused;
    // attempt: the exit to use, its lease and probe slot, its tier.
    pool::exit* exit = nullptr;
    pool::lease lease;
    bool probe = false;
    int tier = 0;
    time_point wait_until{};  // wait: no exit has capacity for the host before then
    std::string error;        // refused: the URL's error result
  };

  // Every call into the pool that chooses an exit for an attempt (pick, exact lease,
  // probe slot, the no-capacity wait up to --queue-timeout). Only this function and
  // report_attempt() drive the pool.
  exit_grant acquire_exit(job& j, time_point now) {
    const auto& cfg = g_.cfg;
    exit_grant out;
    pool::pick_request r;
    r.f = cfg.filter;
    r.host = j.host;
    r.bans = &g_.bans;
    r.host_rates = g_.host_rates.get();
    r.tiers = &g_.tiers;
    r.probe_timeout = cfg.health.probe_timeout;
    if (cfg.session_per_host) {
      r.sticky_key = j.host;
    }
    const auto& wrong_family = j.family == 6 ? v4_exits_ : j.family == 4 ? v6_exits_ : no_exits_;
    auto exclusions = [&]() -> std::span<const pool::exit* const> {
      if (wrong_family.empty()) {
        return j.tried;
      }
      if (j.tried.empty()) {
        return wrong_family;
      }
      exclude_scratch_.assign(j.tried.begin(), j.tried.end());
      exclude_scratch_.insert(exclude_scratch_.end(), wrong_family.begin(), wrong_family.end());
      return exclude_scratch_;
    };
    r.exclude = exclusions();
    auto p = selector_.pick(*g_.snap, r, now);
    if (p.error == pool::pick_error::exhausted && !j.tried.empty()) {
      // Every matching exit was tried once: later attempts may use them again.
      j.tried.clear();
      r.exclude = exclusions();
      p = selector_.pick(*g_.snap, r, now);
    }
    if (p.error == pool::pick_error::no_match) {
      out.error = "no exit matches " + cfg.filter.describe();
      return out;
    }
    pool::lease lease;
    if (p.chosen != nullptr) {
      lease = pool::lease::try_acquire(*p.chosen);
      if (!lease) {
        if (p.probe) {
          p.chosen->release_probe();
        }
        p.error = pool::pick_error::no_capacity;
        p.retry_at = now + pool::capacity_poll;
      }
    }
    if (p.error == pool::pick_error::no_capacity) {
      if (j.queue_deadline == time_point{}) {
        j.queue_deadline = now + from_seconds(cfg.queue_timeout_s);
      }
      if (now >= j.queue_deadline) {
        out.error = fmt::format(
            "no exit had capacity for {} within {} s ({} matching: {} banned for this host, {} "
            "rate-limited or busy){}{}",
            j.host, cfg.queue_timeout_s, p.matching, p.banned, p.limited,
            j.history.empty() ? "" : "; earlier: ", j.history);
        return out;
      }
      out.k = exit_grant::kind::wait;
      out.wait_until = std::min(std::max(p.retry_at, now + milliseconds(1)), j.queue_deadline);
      return out;
    }
    if (p.chosen == nullptr) {
      out.error = j.history.empty() && !wrong_family.empty()
                      ? fmt::format(
                            "no exit can reach this IPv{} address (direct exits of the other family are "
                            "skipped)",
                            j.family)
                      : "no exit left to try" + (j.history.empty() ? std::string() : ": " + j.history);
      return out;
    }
    j.queue_deadline = {};
    out.k = exit_grant::kind::attempt;
    out.exit = p.chosen;
    out.lease = std::move(lease);
    out.probe = p.probe;
    out.tier = p.tier;
    return out;
  }

  // Every report to the pool on a finished attempt: the exit's health (and its probe
  // slot), the host's tier memory, and the ban judgement (--ban-status, --ban-pattern,
  // Retry-After), which it returns.
  ban_verdict report_attempt(job& j, const classification& c, time_point now) {
    const auto& cfg = g_.cfg;
    pool::exit* ex = j.exit;
    if (c.failed == party::exit) {
      ex->report({false, c.latency}, now, cfg.health);
    } else if (c.completed) {
      ex->report({true, c.latency}, now, cfg.health);
      g_.tiers.record(j.host, j.tier, now);
    } else if (j.probe) {
      ex->release_probe();  // the target failed: says nothing about the exit
    }

    // Ban: a ban status, or a pattern in the status line, the kept headers or the body start.
    ban_verdict v;
    if (!c.completed) {
      return v;
    }
    v.banned = std::find(cfg.ban_statuses.begin(), cfg.ban_statuses.end(), c.status) != cfg.ban_statuses.end();
    if (!v.banned && !g_.ban_patterns.empty()) {
      std::string text = fmt::format("{}\n", c.status);
      for (const auto& [name, value] : j.cap.headers) {
        text += name + ": " + value + "\n";
      }
      text += "\n";
      text.append(j.cap.body, 0, std::min<std::size_t>(j.cap.body.size(), 16 * 1024));
      for (const auto& re : g_.ban_patterns) {
        if (std::regex_search(text, re)) {
          v.banned = true;
          break;
        }
      }
    }
    if (v.banned) {
      v.retry_after = j.cap.header("retry-after");
      auto ban_for = duration_cast<clock::duration>(std::chrono::duration<double>(cfg.ban_duration_s));
      if (!v.retry_after.empty()) {
        if (auto d = pool::parse_retry_after(v.retry_after, std::chrono::system_clock::now())) {
          ban_for = *d;
        }
      }
      g_.bans.ban(*ex, j.host, now + ban_for);
    }
    return v;
  }

  // Asks the pool for an exit and starts the transfer (the shard then owns the job until
  // it completes); or the job finishes with an error, or waits for an exit with capacity.
  start_result start(std::unique_ptr<job>& j, time_point now) {
    auto grant = acquire_exit(*j, now);
    if (grant.k == exit_grant::kind::refused) {
      fetch_result res;
      res.url = j->url;
      res.attempts = j->attempts;
      res.error = std::move(grant.error);
      finish(std::move(j), res);
      return start_result::finished();
    }
    if (grant.k == exit_grant::kind::wait) {
      return start_result::wait(grant.wait_until);
    }
    j->reset_attempt();
    j->exit = grant.exit;
    j->lease = std::move(grant.lease);
    j->probe = grant.probe;
    j->tier = grant.tier;
    if (++j->attempts > 1) {
      counters.retries.fetch_add(1, std::memory_order_relaxed);
    }
    job* raw = j.get();  // CURLOPT_PRIVATE: in_flight_ owns it
    in_flight_.emplace(raw, std::move(j));
    transfers_.start(raw->url, grant.exit->spec(), grant.exit->index(), opts_, raw->cap, raw);
    return start_result::started();
  }

  void drain() {
    while (auto done = transfers_.next_done()) {
      complete(*done);
    }
  }

  clock::duration backoff(int attempts) {
    const double base = std::min(g_.cfg.backoff_max_s, g_.cfg.backoff_s * std::pow(2.0, std::max(0, attempts - 1)));
    std::uniform_real_distribution<double> half(0.5, 1.0);  // "equal jitter": [d/2, d)
    return from_seconds(base * half(rng_));
  }

  void complete(const finished_transfer& done) {
    auto node = in_flight_.extract(static_cast<job*>(done.tag));
    assert(!node.empty());
    std::unique_ptr<job> j = std::move(node.mapped());
    const auto now = clock::now();
    const auto& cfg = g_.cfg;
    --inflight_;
    counters.inflight.store(inflight_, std::memory_order_relaxed);
    release_slot();

    const transfer_info& info = done.info;
    pool::exit* ex = j->exit;
    attempt_facts facts;
    facts.rc = done.rc;
    facts.setup_error = done.setup_error;
    facts.status = info.status;
    facts.connect_code = info.connect_code;
    facts.proxy_challenge = j->cap.proxy_challenge;
    facts.scheme = ex->spec().scheme;
    facts.connect_us = info.connect_us;
    facts.ttfb_us = info.ttfb_us;
    facts.total_us = info.total_us;
    facts.curl_error = j->cap.errbuf;
    auto c = classify(facts);
    apply_ban(c, report_attempt(*j, c, now));

    sched_.done(j->host, now, throttle_signal{c.overload, c.completed, info.ttfb_us});
    if (!c.what.empty()) {
      if (!j->history.empty()) {
        j->history += "; ";
      }
      j->history += ex->id() + ": " + c.what;
    }
    if (c.retryable && j->attempts <= cfg.retries && drain_only_) {
      --local_;  // stopping: no retry, and no line: the next run fetches it again
      return;
    }
    if (c.retryable && j->attempts <= cfg.retries) {
      j->tried.push_back(ex);
      j->lease.release();
      const auto at = now + backoff(j->attempts);
      const std::string_view host = j->host;  // the job's own string: it does not move
      sched_.retry_at(host, std::move(j), at);
      return;
    }

    fetch_result r;
    r.url = j->url;
    r.status = c.status;
    r.headers = std::move(j->cap.headers);
    if (r.status != 0) {
      r.final_url = info.effective_url;
    }
    r.exit_id = ex->id();
    r.exit_ip = is_proxy(ex->spec()) ? info.primary_ip : info.local_ip;
    r.attempts = j->attempts;
    r.timings = {info.dns_us / 1000.0, info.connect_us / 1000.0, info.tls_us / 1000.0, info.ttfb_us / 1000.0,
                 info.total_us / 1000.0};
    r.body_size = j->cap.body_size;
    r.body_truncated = j->cap.truncated;
    if (c.completed) {
      if (!cfg.bodies_dir.empty()) {
        auto file = write_body_file(cfg.bodies_dir, j->fp, j->cap.body);
        if (!file.ok) {
          g_.set_fatal(fmt::format("{}: cannot write body: {}", file.path, std::strerror(errno)));
          file.path.clear();
        }
        r.body_file = std::move(file.path);
      } else if (cfg.inline_body_max > 0) {
        // More may have been kept (for ban patterns, or the WARC): inline only the first part.
        r.body = std::string_view(j->cap.body).substr(0, cfg.inline_body_max);
        r.body_truncated = r.body_truncated || r.body.size() < j->cap.body.size();
        r.inline_body = true;
      }
    }
    if (c.failed != party::none) {
      r.error = j->attempts > 1 ? fmt::format("{} attempts failed: {}", j->attempts, j->history) : j->history;
    }
    tally.latency.add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, info.total_us)));
    ++tally.by_exit[ex->index()];
    std::string warc_bytes;
    if (opts_.warc && c.completed && !j->cap.raw_head.empty()) {
      // Direct exits: the target's address; through a proxy we only know the proxy's.
      warc_bytes = warc_records({r.final_url.empty() ? r.url : r.final_url, is_proxy(ex->spec()) ? "" : info.primary_ip,
                                 j->cap.raw_head, j->cap.body, j->cap.request_head},
                                rng_);
    }
    j->lease.release();
    finish(std::move(j), r, warc_bytes);
  }

  // The URL's line (with its WARC records, if any); the job goes after (r may point into it).
  void finish(std::unique_ptr<job> j, fetch_result& r, std::string_view warc_bytes = {}) {
    if (warc_bytes.empty()) {
      lines_.add(r);
    } else {
      flush();  // keep this shard's lines in order
      if (!lines_.add_with_warc(r, warc_bytes)) {
        g_.set_fatal(fmt::format("cannot write the output or the WARC file: {}", std::strerror(errno)));
      }
    }
    count_result(r, counters, tally);
    j.reset();
    --local_;
    if (lines_.pending() > 256 * 1024) {
      flush();
    }
  }

  void flush() {
    if (!lines_.flush()) {
      g_.set_fatal(fmt::format("cannot write the output: {}", std::strerror(errno)));
    }
  }

  shared_state& g_;
  int index_;
  std::size_t local_cap_;
  pool::selector selector_;
  std::mt19937_64 rng_;
  std::vector<const pool::exit*> v4_exits_, v6_exits_, no_exits_, exclude_scratch_;
  host_scheduler<job> sched_;                                       // jobs queued or waiting to retry
  std::unordered_map<const job*, std::unique_ptr<job>> in_flight_;  // jobs with a transfer
  std::size_t local_ = 0;  // jobs in this shard: waiting, in flight or on a timer
  int inflight_ = 0;
  bool drain_only_ = false;
  line_writer lines_;
  transfer_options opts_;
  // Last: destroyed first, so no transfer outlives the jobs its callbacks write to.
  transfer_engine transfers_;
};

void read_input(shared_state& g, line_reader& reader, url_set& seen, std::vector<std::unique_ptr<shard>>& shards) {
  const std::size_t n = shards.size();
  try {
    while (auto line = reader.next()) {
      if (g.fatal.load(std::memory_order_relaxed) || g.stopping.load(std::memory_order_relaxed)) {
        break;
      }
      g.lines_read.fetch_add(1, std::memory_order_relaxed);
      const std::string_view url = trim(*line);
      if (url.empty() || url.front() == '#') {
        g.lines_ignored.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      const std::uint64_t fp = fingerprint(url);
      if (!seen.insert(fp)) {
        g.skipped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      auto parts = parse_url(url);
      input_item item{std::string(url), std::move(parts.host), fp, parts.ok};
      shard& s = *shards[item.valid ? fingerprint(item.host) % n : 0];
      while (!s.ring.try_push(std::move(item))) {
        // The shard is behind: wait for it (backpressure keeps memory bounded).
        if (g.fatal.load(std::memory_order_relaxed) || g.stopping.load(std::memory_order_relaxed)) {
          break;
        }
        if (s.hungry.exchange(false)) {
          s.wake();
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (s.hungry.load(std::memory_order_relaxed) && s.hungry.exchange(false)) {
        s.wake();
      }
    }
  } catch (const std::exception& e) {
    g.set_fatal(e.what());
  }
  g.input_done.store(true, std::memory_order_release);
  for (auto& s : shards) {
    s->wake();
  }
}

std::atomic<int> g_signals{0};

extern "C" void on_stop_signal(int sig) {
  if (g_signals.fetch_add(1) >= 1) {
    std::signal(sig, SIG_DFL);  // a second signal stops at once (resume handles it)
    std::raise(sig);
  }
}

// As many descriptors as we may have: connections are cached per exit.
void raise_nofile_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

long peak_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

}  // namespace

int run_fetch(const fetch_config& cfg) {
  if (cfg.output.empty()) {
    throw std::runtime_error("--output is required");
  }
  if (cfg.concurrency < 1 || cfg.per_host < 1 || cfg.retries < 0 || cfg.timeout_s <= 0) {
    throw std::runtime_error("--concurrency and --per-host must be >= 1, --retries >= 0, --timeout > 0");
  }
  if (const CURLcode rc = curl_global_init(CURL_GLOBAL_ALL); rc != CURLE_OK) {
    throw std::runtime_error(fmt::format("curl_global_init: {}", curl_easy_strerror(rc)));
  }
  raise_nofile_limit();
  shared_state g(cfg);
  std::vector<proto::exit_spec> specs;
  if (cfg.pool_file.empty()) {
    specs = proto::parse_pool_text("direct://\n", "<default pool>");
  } else {
    specs = pool::load_pool_file(cfg.pool_file);
  }
  g.snap = pool::snapshot::build(std::move(specs), nullptr, cfg.limits);
  if (cfg.limits.per_exit_host_rate > 0) {
    g.host_rates = std::make_unique<pool::host_limits>(cfg.limits);
  }
  for (const auto& p : cfg.ban_patterns) {
    try {
      g.ban_patterns.emplace_back(p, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      throw std::runtime_error(fmt::format("--ban-pattern '{}': {}", p, e.what()));
    }
  }

  // The state dir holds a lock, so two runs never append to one output at once.
  namespace fs = std::filesystem;
  const std::string state_dir = cfg.state_dir.empty() ? cfg.output + ".state" : cfg.state_dir;
  fs::create_directories(state_dir);
  const std::string lock_path = state_dir + "/lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    throw std::runtime_error(
        fmt::format("{}: another fetch is using this state dir (or it is not writable)", lock_path));
  }
  if (!cfg.bodies_dir.empty()) {
    fs::create_directories(cfg.bodies_dir);
  }

  // Sized up front when the input's line count is known: no doubling (and no moment with
  // both the old and the new table) on the way to 10 million URLs.
  const auto total_lines = count_lines(cfg.input);
  url_set seen(std::max<std::uint64_t>(1 << 16, total_lines.value_or(0)));
  scan_info scanned;
  std::string warcinfo;
  if (!cfg.warc_path.empty()) {
    const std::string info_block = "software: exitpool fetch 0.1 (libcurl " +
                                   std::string(curl_version_info(CURLVERSION_NOW)->version) +
                                   ")\r\nformat: WARC File Format 1.1\r\nconformsTo: "
                                   "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\n";
    std::random_device rd;
    append_warc_gz(warcinfo,
                   {"warcinfo", warc_record_id((std::uint64_t(rd()) << 32) | rd(), (std::uint64_t(rd()) << 32) | rd()),
                    warc_date_now(), "", "", "", "application/warc-fields", info_block});
  }
  result_log log(cfg.output, cfg.resume, seen, scanned, cfg.warc_path, warcinfo);
  g.log = &log;
  if (scanned.lines > 0 || scanned.truncated_bytes > 0) {
    std::string msg = fmt::format("fetch: resuming: {} URLs already in {}", scanned.lines, cfg.output);
    if (scanned.truncated_bytes > 0) {
      msg += fmt::format(" (cut {} bytes of a torn tail)", scanned.truncated_bytes);
    }
    if (scanned.warc_truncated_bytes > 0 && scanned.lines > 0) {
      msg += fmt::format("; cut {} bytes of WARC records without a line", scanned.warc_truncated_bytes);
    }
    std::fprintf(stderr, "%s\n", msg.c_str());
  }
  line_reader reader(cfg.input);

  const int threads = cfg.threads > 0 ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<shard>> shards;
  for (int i = 0; i < threads; ++i) {
    shards.push_back(std::make_unique<shard>(g, i, 4096));
    g.shards.push_back(shards.back().get());
  }
  const auto t0 = clock::now();
  std::vector<std::thread> workers;
  for (auto& s : shards) {
    workers.emplace_back([&s] { s->run(); });
  }
  std::thread reader_thread([&] { read_input(g, reader, seen, shards); });
  g_signals.store(0);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);

  // Progress and fsync, on this thread.
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const double interval = cfg.progress_interval_s > 0 ? cfg.progress_interval_s : (tty ? 0.25 : 5.0);
  auto next_progress = t0 + from_seconds(interval);
  auto next_sync = t0 + from_seconds(cfg.fsync_interval_s);
  progress_meter meter(total_lines, t0);
  auto sum = [&](auto member) {
    std::uint64_t v = 0;
    for (auto& s : shards) {
      v += (s->counters.*member).load(std::memory_order_relaxed);
    }
    return v;
  };
  auto all_finished = [&] {
    return std::all_of(shards.begin(), shards.end(), [](auto& s) { return s->finished.load(); });
  };
  bool wrote_tty_line = false;
  while (!all_finished()) {
    std::this_thread::sleep_for(milliseconds(50));
    if (g_signals.load() > 0 && !g.stopping.exchange(true)) {
      std::fprintf(stderr, "%sfetch: stopping: finishing the requests in flight (signal again to stop now)\n",
                   wrote_tty_line ? "\n" : "");
      for (auto& s : shards) {
        s->wake();
      }
    }
    const auto now = clock::now();
    if (now >= next_sync) {
      if (!log.sync()) {
        g.set_fatal(fmt::format("{}: fsync failed: {}", cfg.output, std::strerror(errno)));
      }
      next_sync = now + from_seconds(cfg.fsync_interval_s);
    }
    if (now >= next_progress && !cfg.quiet) {
      progress_sample p;
      p.done = sum(&shard_counters::done);
      p.processed = p.done + g.skipped.load() + g.lines_ignored.load();
      p.errors = sum(&shard_counters::errors);
      p.retries = sum(&shard_counters::retries);
      for (auto& s : shards) {
        p.inflight += s->counters.inflight.load(std::memory_order_relaxed);
      }
      const std::string line = meter.line(p, now);
      if (tty) {
        std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
        wrote_tty_line = true;
      } else {
        std::fprintf(stderr, "%s\n", line.c_str());
      }
      std::fflush(stderr);
      next_progress = now + from_seconds(interval);
    }
  }
  reader_thread.join();
  for (auto& w : workers) {
    w.join();
  }
  const double elapsed = seconds_of(clock::now() - t0);
  if (!log.sync()) {
    g.set_fatal(fmt::format("{}: fsync failed: {}", cfg.output, std::strerror(errno)));
  }
  if (wrote_tty_line) {
    std::fprintf(stderr, "\r\x1b[K");
  }

  // Summary.
  result_tally tally;
  tally.by_exit.assign(g.snap->size(), 0);
  for (auto& s : shards) {
    tally.merge(s->tally);
  }
  run_totals totals;
  totals.done = sum(&shard_counters::done);
  totals.errors = sum(&shard_counters::errors);
  totals.retries = sum(&shard_counters::retries);
  totals.skipped = g.skipped.load();
  totals.elapsed_s = elapsed;
  totals.peak_rss_mib = peak_rss_kib() / 1024;
  for (const auto& line : summary_lines(totals, tally, *g.snap)) {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  shards.clear();
  ::close(lock_fd);
  curl_global_cleanup();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (g.fatal.load()) {
    std::fprintf(stderr, "fetch: fatal: %s\n", g.fatal_msg.c_str());
    return 1;
  }
  if (g.stopping.load()) {
    std::fprintf(stderr,
                 "fetch: interrupted: the output has every finished URL; run the same command again to "
                 "fetch the rest\n");
    return 3;
  }
  return 0;
}

}  // namespace exitpool::fetch
