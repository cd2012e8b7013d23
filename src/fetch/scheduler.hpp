#pragma once
// A shard's per-host scheduling: which queued URL may start now. One FIFO queue per
// target host; politeness (--per-host requests in flight, --delay between starts to a
// host); --auto-throttle (an AIMD window per host, 1..--per-host); retries waiting out
// their backoff; hosts waiting for an exit with capacity. Hosts are kept while they have
// work (and 60 s after their last request with --auto-throttle, for the window).
//
// Pure decisions: time is a parameter (no clock read), no I/O, no libcurl. The job type
// is opaque: the scheduler owns queued jobs and hands each to the caller's start
// function. One shard's thread.

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pool/pool.hpp"

namespace exitpool::fetch {

using pool::time_point;

struct scheduler_config {
  int per_host = 8;               // requests in flight per host (>= 1)
  pool::clock::duration delay{};  // between request starts to one host
  bool auto_throttle = false;     // adapt each host's window between 1 and per_host
};

// What a finished attempt tells --auto-throttle.
struct throttle_signal {
  bool overload = false;     // timeout, 429, 503 or ban: the target is overloaded
  bool ok = false;           // a response arrived
  std::int64_t ttfb_us = 0;  // its time to first byte
};

// --auto-throttle: AIMD on a host's window of requests in flight, as TCP does with its
// congestion window. It starts at 1 and grows by 1 per success (slow start) up to
// ssthresh (initially the cap), then by 1 per window of successes; a success whose time
// to first byte exceeds 4x the host's best (+20 ms) shrinks it by 1 per window (the
// target is queueing); an overload halves it (at most once per recent latency, so one
// burst of errors counts once) and sets ssthresh there. Never above the cap, never
// below 1.
class aimd_window {
 public:
  int limit() const { return std::max(1, static_cast<int>(cwnd_)); }
  double cwnd() const { return cwnd_; }
  void update(const throttle_signal& s, time_point now, int cap);

 private:
  double cwnd_ = 1;
  double ssthresh_ = 0;
  std::int64_t base_us_ = -1;  // lowest time to first byte seen
  time_point last_decrease_{};
};

// What the start function did with the job it was offered.
struct start_result {
  enum class kind {
    started,   // it took the job; the host counts it in flight until done()
    finished,  // it took the job; the URL ended without a transfer (an error result)
    wait,      // the job goes back to the front of its queue; the host waits until `until`
    no_slot,   // no global slot: the job and its host stay first in line; dispatch stops
  };
  kind k = kind::started;
  time_point until{};

  static start_result started() { return {kind::started, {}}; }
  static start_result finished() { return {kind::finished, {}}; }
  static start_result wait(time_point t) { return {kind::wait, t}; }
  static start_result no_slot() { return {kind::no_slot, {}}; }
};

template <class Job>
class host_scheduler {
 public:
  explicit host_scheduler(scheduler_config c) : cfg_(c) {}

  // A new job, at the back of its host's queue. `min_delay`: the host's own least time
  // between request starts (crawl: its robots.txt Crawl-delay), when longer than --delay;
  // it holds from the host's last start on.
  void push(std::string_view host, std::unique_ptr<Job> j, pool::clock::duration min_delay = {}) {
    auto& h = host_of(host);
    if (min_delay > h.delay) {
      h.delay = min_delay;
      h.next_start = std::max(h.next_start, h.last_start + min_delay);
    }
    h.waiting.push_back(std::move(j));
    mark_runnable(h);
  }

  // A retry: at `at`, it goes to the front of its host's queue.
  void retry_at(std::string_view host, std::unique_ptr<Job> j, time_point at) {
    push_timer(timer{at, std::move(j), std::string(host)});
  }

  // Fires what is due at `now`: retries join their queues, hosts past their ready time
  // may start again.
  void wake_due(time_point now) {
    while (!timers_.empty() && timers_.front().at <= now) {
      std::pop_heap(timers_.begin(), timers_.end(), later);
      timer t = std::move(timers_.back());
      timers_.pop_back();
      if (t.job) {
        auto& h = host_of(t.host);
        h.waiting.push_front(std::move(t.job));
        mark_runnable(h);
      } else if (auto it = hosts_.find(t.host); it != hosts_.end()) {
        it->second->wake_pending = false;
        mark_runnable(*it->second);
      }
    }
  }

  // When wake_due() has something to do next; nullopt when nothing waits on time.
  std::optional<time_point> next_wake() const {
    return timers_.empty() ? std::nullopt : std::optional<time_point>(timers_.front().at);
  }

  // Some host has a queued job and no reason known yet to hold it back.
  bool has_runnable() const { return !runnable_.empty(); }

  // Offers the first job of each host that may start at `now` (below its in-flight
  // limit, past its ready time) to `start(std::unique_ptr<Job>&) -> start_result`, host
  // by host in turn, until no host is ready or `start` answers no_slot. A host held back
  // by --delay or a wait is woken at its ready time (see next_wake()).
  template <class Start>
  void dispatch(time_point now, Start&& start) {
    while (!runnable_.empty()) {
      host* h = runnable_.front();
      runnable_.pop_front();
      h->in_runnable = false;
      if (h->waiting.empty() || h->inflight >= limit(*h)) {
        continue;  // done() makes it runnable again when a request ends
      }
      if (now < h->next_start) {
        if (!h->wake_pending) {
          h->wake_pending = true;
          push_timer(timer{h->next_start, nullptr, h->name});
        }
        continue;
      }
      std::unique_ptr<Job> j = std::move(h->waiting.front());
      h->waiting.pop_front();
      const start_result r = start(j);
      switch (r.k) {
        case start_result::kind::started:
          assert(!j);
          ++h->inflight;
          h->last_start = now;
          h->next_start = now + h->delay;
          break;
        case start_result::kind::finished:
          assert(!j);
          break;
        case start_result::kind::wait:
          // No exit can serve this host now: the whole host waits, not just this URL,
          // so a long queue for it costs one pick per wake.
          h->waiting.push_front(std::move(j));
          h->next_start = std::max(h->next_start, r.until);
          break;
        case start_result::kind::no_slot:
          h->waiting.push_front(std::move(j));
          runnable_.push_front(h);  // first in line when a slot frees
          h->in_runnable = true;
          return;
      }
      mark_runnable(*h);
    }
  }

  // A started job's request to `host` ended at `now`.
  void done(std::string_view host, time_point now, const throttle_signal& s) {
    auto& h = host_of(host);
    --h.inflight;
    h.last_done = now;
    if (cfg_.auto_throttle) {
      h.window.update(s, now, cfg_.per_host);
    }
    mark_runnable(h);
  }

  // Forgets hosts with nothing queued, in flight or pending (with --auto-throttle only
  // 60 s after their last request, so their window is kept).
  void sweep(time_point now) {
    const auto keep = cfg_.auto_throttle ? std::chrono::seconds(60) : std::chrono::seconds(0);
    for (auto it = hosts_.begin(); it != hosts_.end();) {
      const auto& h = *it->second;
      if (h.inflight == 0 && h.waiting.empty() && !h.in_runnable && !h.wake_pending && h.next_start <= now &&
          now - h.last_done >= keep) {
        it = hosts_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::size_t host_count() const { return hosts_.size(); }

 private:
  struct host {
    std::string name;
    int inflight = 0;
    pool::clock::duration delay{};  // between starts: --delay, or the host's own when longer
    time_point last_start{};
    time_point next_start{};  // no start before (--delay, or waiting for an exit)
    std::deque<std::unique_ptr<Job>> waiting;
    bool in_runnable = false;
    bool wake_pending = false;
    time_point last_done{};
    aimd_window window;
  };

  struct timer {
    time_point at;
    std::unique_ptr<Job> job;  // a retry to queue, or (null) a host to wake
    std::string host;
  };
  static bool later(const timer& a, const timer& b) { return a.at > b.at; }

  void push_timer(timer t) {
    timers_.push_back(std::move(t));
    std::push_heap(timers_.begin(), timers_.end(), later);
  }

  host& host_of(std::string_view name) {
    auto it = hosts_.find(std::string(name));
    if (it == hosts_.end()) {
      auto h = std::make_unique<host>();
      h->name = std::string(name);
      h->delay = cfg_.delay;
      it = hosts_.emplace(h->name, std::move(h)).first;
    }
    return *it->second;
  }

  void mark_runnable(host& h) {
    if (!h.in_runnable && !h.waiting.empty()) {
      h.in_runnable = true;
      runnable_.push_back(&h);
    }
  }

  int limit(const host& h) const { return cfg_.auto_throttle ? h.window.limit() : cfg_.per_host; }

  scheduler_config cfg_;
  std::unordered_map<std::string, std::unique_ptr<host>> hosts_;
  std::deque<host*> runnable_;
  std::vector<timer> timers_;  // a min-heap on `at`
};

}  // namespace exitpool::fetch
