// A fetch shard's flow, per URL: take it from the input ring (pull) -> queue it by host
// (host_scheduler: --per-host, --delay, AIMD) -> when its host is ready, begin a pool
// attempt (begin_attempt: pool::driver::begin) and start the transfer (transfer_engine)
// -> when it completes, classify it (classify), judge a ban (judge_ban: pool::ban_policy)
// and complete the attempt (pool::attempt::complete: health, tiers, bans) -> retry later
// on another exit, or write its result (line, body file, WARC).
// The run around the shards (input reader, progress, summary) is in run.cpp.

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "fetch/classify.hpp"
#include "fetch/input.hpp"
#include "fetch/progress.hpp"
#include "fetch/result.hpp"
#include "fetch/scheduler.hpp"
#include "fetch/shard.hpp"
#include "fetch/transfer.hpp"
#include "fetch/writer.hpp"
#include "pool/attempt.hpp"
#include "pool/ban_policy.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::fetch {

namespace {

using pool::clock;
using pool::time_point;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

// One URL in a shard, from the ring until its line is written.
struct job {
  std::string url;
  std::string host;
  std::uint64_t fp = 0;
  crawl_tag tag;
  int attempts = 0;
  int family = 0;  // 4 or 6 when the host is an IP literal
  std::vector<const pool::exit*> tried;
  time_point queue_deadline{};  // set at the first "no capacity" wait
  std::string history;          // "exit: what failed; ..." over the attempts
  // The attempt in flight: its exit's lease (and probe slot) is held from the start of
  // the transfer until it is written or retried, or the job goes (a stop). It refers
  // to `host` (host_outlives_attempt).
  pool::attempt attempt;
  response_capture cap;  // filled by libcurl's callbacks
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
  o.dns = cfg.dns;
  o.warc = !cfg.warc_path.empty();
  o.keep = std::max(!cfg.bodies_dir.empty() ? cfg.max_body : cfg.inline_body_max, cfg.min_keep);
  if (o.warc) {
    o.keep = std::max(o.keep, cfg.max_body);
  }
  if (!cfg.ban_patterns.empty()) {
    o.keep = std::max(o.keep, pool::ban_policy::look_ahead);  // ban patterns look at the body's start
    o.ban_lines = true;                                       // ... and at every header
  }
  return o;
}

class fetch_shard final : public shard {
 public:
  fetch_shard(shared_state& g, int index, std::size_t ring_capacity)
      : shard(ring_capacity),
        g_(g),
        index_(index),
        local_cap_(static_cast<std::size_t>(std::max(1024, g.cfg.concurrency * 2))),
        driver_(g.cfg.policy, 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(index + 1), *g.state,
                g.cfg.health.probe_timeout),
        rng_(static_cast<std::uint64_t>(index) * 7919 + 17),
        sched_(scheduler_config{g.cfg.per_host, from_seconds(g.cfg.delay_s), g.cfg.auto_throttle}),
        lines_(*g.log),
        opts_(transfer_options_of(g.cfg)),
        robots_opts_(opts_),
        transfers_(g.snap->size()) {
    tally.by_exit.assign(g.snap->size(), 0);
    if (g.hook != nullptr) {
      g.hook->robots_options(robots_opts_);
    }
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
  ~fetch_shard() override = default;

  // Should libcurl fail to signal, the shard wakes at its poll timeout (100 ms).
  void wake() override { (void)transfers_.wakeup(); }

  void run() override {
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
      j->tag = item->tag;
      j->family = item->valid ? literal_family(j->host) : 0;
      if (!item->valid) {
        fetch_result r;
        r.url = j->url;
        r.error = "invalid url: expected http:// or https:// with a host";
        finish(std::move(j), r);
        continue;
      }
      const std::string_view host = j->host;  // the job's own string: it does not move
      const auto min_delay = j->tag.min_delay;
      sched_.push(host, std::move(j), min_delay);
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
    time_point wait_until{};  // wait: no exit has capacity for the host before then
    std::string error;        // refused: the URL's error result
  };

  // Begins the job's next attempt (pool::driver::begin): on success j.attempt holds the
  // exit, its lease and probe slot. Otherwise the job waits for an exit with capacity (up
  // to --queue-timeout from its first wait) or is refused. The only place fetch asks the
  // pool for an exit; complete() is the only place it reports one.
  exit_grant begin_attempt(job& j, time_point now) {
    const auto& cfg = g_.cfg;
    exit_grant out;
    pool::attempt_request r;
    r.f = cfg.filter;
    r.host = j.host;
    r.host_outlives_attempt = true;  // j.host: the job owns both
    if (cfg.session_per_host) {
      r.sticky_key = j.host;
      r.sticky_forever = true;
    }
    r.queued = j.queue_deadline != time_point{};
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
    auto b = driver_.begin(g_.snap, r, now);
    if (b.refused == pool::failure::exhausted && !j.tried.empty()) {
      // Every matching exit was tried once: later attempts may use them again.
      j.tried.clear();
      r.exclude = exclusions();
      b = driver_.begin(g_.snap, r, now);
    }
    switch (b.refused) {
      case pool::failure::none:
        break;
      case pool::failure::no_match:
        out.error = "no exit matches " + cfg.filter.describe();
        return out;
      case pool::failure::no_capacity:
        if (j.queue_deadline == time_point{}) {
          j.queue_deadline = now + from_seconds(cfg.queue_timeout_s);
        }
        if (now >= j.queue_deadline && b.wait != pool::session_wait::none) {
          out.error = fmt::format("the session's exit {} for {} had no capacity within {} s ({}){}{}",
                                  b.session_exit->id(), j.host, cfg.queue_timeout_s, pool::session_wait_name(b.wait),
                                  j.history.empty() ? "" : "; earlier: ", j.history);
          return out;
        }
        if (now >= j.queue_deadline) {
          out.error = fmt::format(
              "no exit had capacity for {} within {} s ({} matching: {} banned for this host, {} "
              "rate-limited or busy){}{}",
              j.host, cfg.queue_timeout_s, b.matching, b.banned, b.limited,
              j.history.empty() ? "" : "; earlier: ", j.history);
          return out;
        }
        out.k = exit_grant::kind::wait;
        out.wait_until = std::min(std::max(b.retry_at, now + milliseconds(1)), j.queue_deadline);
        return out;
      default:  // exhausted: every exit that may serve this URL was tried
        out.error = j.history.empty() && !wrong_family.empty()
                        ? fmt::format(
                              "no exit can reach this IPv{} address (direct exits of the other family are "
                              "skipped)",
                              j.family)
                        : "no exit left to try" + (j.history.empty() ? std::string() : ": " + j.history);
        return out;
    }
    j.queue_deadline = {};
    j.attempt = std::move(b.granted);
    out.k = exit_grant::kind::attempt;
    return out;
  }

  // The ban policy's verdict on a completed attempt (pool/ban_policy.hpp): the same policy
  // object as the gateway's would be for the same options, over the same text (the last
  // response's status line and headers, the first 16 KiB of its body; head_capture.hpp).
  std::optional<milliseconds> judge_ban(const job& j, const classification& c) const {
    const auto& policy = g_.ban_policy;
    if (!c.completed || !policy.may_ban(static_cast<int>(c.status))) {
      return std::nullopt;
    }
    pool::response_sample sample = j.cap.head.sample(j.cap.body);
    sample.status = static_cast<int>(c.status);  // libcurl's reading of the status line decides
    return policy.judge(sample, std::chrono::system_clock::now());
  }

  // Asks the pool for an exit and starts the transfer (the shard then owns the job until
  // it completes); or the job finishes with an error, or waits for an exit with capacity.
  start_result start(std::unique_ptr<job>& j, time_point now) {
    auto grant = begin_attempt(*j, now);
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
    if (++j->attempts > 1) {
      counters.retries.fetch_add(1, std::memory_order_relaxed);
    }
    job* raw = j.get();  // CURLOPT_PRIVATE: in_flight_ owns it
    in_flight_.emplace(raw, std::move(j));
    const pool::exit& ex = raw->attempt.chosen();
    transfers_.start(raw->url, ex.spec(), ex.index(), raw->tag.robots || raw->tag.sitemap ? robots_opts_ : opts_,
                     raw->cap, raw);
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
    const pool::exit* ex = &j->attempt.chosen();  // owned by the snapshot, which outlives the run
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
    const auto ban = judge_ban(*j, c);
    if (ban) {
      apply_ban(c, {true, std::string(j->cap.head.retry_after())});
    }
    j->attempt.complete(outcome_of(c, ban), now);

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
      j->attempt.release();
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
    j->attempt.release();
    finish(std::move(j), r, warc_bytes);
  }

  // The URL's line (with its WARC records, if any); the job goes after (r may point into it).
  void finish(std::unique_ptr<job> j, fetch_result& r, std::string_view warc_bytes = {}) {
    if (g_.hook != nullptr && !g_.hook->on_result(j->host, j->tag, j->cap, r, line_ref{index_, lines_added_ + 1})) {
      j.reset();
      --local_;
      return;
    }
    ++lines_added_;
    if (warc_bytes.empty()) {
      lines_.add(r);
    } else {
      flush();  // keep this shard's lines in order
      if (!lines_.add_with_warc(r, warc_bytes)) {
        g_.set_fatal(fmt::format("cannot write the output or the WARC file: {}", std::strerror(errno)));
      } else {
        counters.lines_written.store(lines_added_, std::memory_order_release);
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
      return;
    }
    counters.lines_written.store(lines_added_, std::memory_order_release);
  }

  shared_state& g_;
  int index_;
  std::size_t local_cap_;
  pool::driver driver_;  // this shard's way into the pool (its selector)
  std::mt19937_64 rng_;
  std::vector<const pool::exit*> v4_exits_, v6_exits_, no_exits_, exclude_scratch_;
  host_scheduler<job> sched_;                                       // jobs queued or waiting to retry
  std::unordered_map<const job*, std::unique_ptr<job>> in_flight_;  // jobs with a transfer
  std::size_t local_ = 0;  // jobs in this shard: waiting, in flight or on a timer
  int inflight_ = 0;
  std::uint64_t lines_added_ = 0;  // result lines made by this shard (line_ref::seq)
  bool drain_only_ = false;
  line_writer lines_;
  transfer_options opts_;
  transfer_options robots_opts_;  // crawl: robots.txt fetches (redirects followed, 500 KiB kept)
  // Last: destroyed first, so no transfer outlives the jobs its callbacks write to.
  transfer_engine transfers_;
};

}  // namespace

std::unique_ptr<shard> make_shard(shared_state& g, int index, std::size_t ring_capacity) {
  return std::make_unique<fetch_shard>(g, index, ring_capacity);
}

}  // namespace exitpool::fetch
