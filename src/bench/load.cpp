#include "bench/load.hpp"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "fetch/classify.hpp"
#include "fetch/input.hpp"
#include "fetch/stats.hpp"
#include "pool/attempt.hpp"

namespace exitpool::bench {

namespace {

using clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// What one thread of a cell measured (merged after the join).
struct thread_tally {
  std::uint64_t ok = 0, errors = 0, unfinished = 0;
  clock::time_point last_done{};
  fetch::latency_histogram latency;
  std::string first_error;
  std::exception_ptr failure;  // libcurl could not start: rethrown by run_cell
};

// Shared by a cell's threads.
struct cell_clock {
  clock::time_point start;
  clock::time_point deadline;
  std::atomic<std::uint64_t> started{0};  // against grid_bounds::max_requests
};

// One request slot: at most one request in flight in it at a time.
struct slot {
  pool::attempt attempt;
  fetch::response_capture cap;
  clock::time_point began{};
  bool busy = false;
};

class worker {
 public:
  worker(const load_target& t, int share, int index, cell_clock& cc, thread_tally& out)
      : t_(t),
        cc_(cc),
        out_(out),
        engine_(t.snap->size()),
        driver_(t.policy, 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(index + 1), *t.state, t.probe_timeout),
        slots_(static_cast<std::size_t>(share)),
        host_(fetch::parse_url(t.url).host) {}

  void run() {
    for (;;) {
      const auto now = clock::now();
      if (now >= cc_.deadline) {
        break;
      }
      bool idle = false;
      for (auto& s : slots_) {
        if (!s.busy && !start(s, now)) {
          idle = true;
        }
      }
      engine_.perform();
      while (auto done = engine_.next_done()) {
        finish(*done);
      }
      // An idle slot (a pool refusal, the count bound) is tried again soon; otherwise
      // wait for a socket, libcurl's own timers or the end of the cell.
      const auto left = duration_cast<milliseconds>(cc_.deadline - clock::now()) + milliseconds(1);
      engine_.poll(std::clamp(left, milliseconds(0), idle ? milliseconds(10) : milliseconds(100)));
    }
    for (const auto& s : slots_) {
      out_.unfinished += s.busy ? 1 : 0;
    }
    // The engine's destructor abandons what is still in flight.
  }

 private:
  void error(std::string what) {
    ++out_.errors;
    if (out_.first_error.empty()) {
      out_.first_error = std::move(what);
    }
  }

  // Starts the slot's next request; false when it stays idle (the count bound, a refusal).
  bool start(slot& s, clock::time_point now) {
    if (now >= cc_.deadline || cc_.started.fetch_add(1, std::memory_order_relaxed) >= grid_bounds::max_requests) {
      return false;
    }
    pool::attempt_request r;
    r.host = host_;
    r.host_outlives_attempt = true;  // host_ lives as long as the worker, which outlives its attempts
    auto b = driver_.begin(t_.snap, r, pool::clock::now());
    if (b.refused != pool::failure::none) {
      error(fmt::format("the pool refused: {}", pool::failure_name(b.refused)));
      return false;
    }
    s.attempt = std::move(b.granted);
    s.began = now;
    s.busy = true;
    const pool::exit& ex = s.attempt.chosen();
    engine_.start(t_.url, ex.spec(), ex.index(), t_.opts, s.cap, &s);
    return true;
  }

  void finish(const fetch::finished_transfer& done) {
    auto& s = *static_cast<slot*>(done.tag);
    const auto now = clock::now();
    s.busy = false;
    const pool::exit& ex = s.attempt.chosen();
    fetch::attempt_facts f;
    f.rc = done.rc;
    f.setup_error = done.setup_error;
    f.status = done.info.status;
    f.connect_code = done.info.connect_code;
    f.proxy_challenge = s.cap.proxy_challenge;
    f.scheme = ex.spec().scheme;
    f.connect_us = done.info.connect_us;
    f.ttfb_us = done.info.ttfb_us;
    f.total_us = done.info.total_us;
    f.curl_error = s.cap.errbuf;
    const auto c = fetch::classify(f);
    s.attempt.complete(fetch::outcome_of(c, std::nullopt), pool::clock::now());
    s.attempt.release();
    if (now > cc_.deadline) {
      ++out_.unfinished;  // finished after the window closed: not part of the measurement
      return;
    }
    if (c.failed != fetch::party::none) {
      error(c.what);
    } else if (c.status >= 400) {
      error(fmt::format("status {}", c.status));
    } else {
      ++out_.ok;
      out_.latency.add(static_cast<std::uint64_t>(duration_cast<std::chrono::microseconds>(now - s.began).count()));
    }
    out_.last_done = std::max(out_.last_done, now);
    // The closed loop: the next request goes out at once.
    start(s, now);
  }

  const load_target& t_;
  cell_clock& cc_;
  thread_tally& out_;
  fetch::transfer_engine engine_;
  pool::driver driver_;
  std::vector<slot> slots_;  // sized once: transfers point into it
  std::string host_;
};

void run_thread(const load_target& t, int share, int index, cell_clock& cc, thread_tally& out) {
  try {
    worker w(t, share, index, cc, out);
    w.run();
  } catch (...) {
    out.failure = std::current_exception();
  }
}

}  // namespace

cell run_cell(const load_target& t, cell c, std::chrono::duration<double> duration) {
  const int threads = std::max(1, c.threads);
  cell_clock cc;
  std::vector<thread_tally> tallies(static_cast<std::size_t>(threads));
  const double cpu0 = cpu_seconds();
  cc.start = clock::now();
  cc.deadline = cc.start + duration_cast<clock::duration>(duration);
  {
    std::vector<std::jthread> workers;
    workers.reserve(tallies.size());
    for (int i = 0; i < threads; ++i) {
      // An even split of the total; the first (inflight % threads) take one more.
      const int share = c.inflight / threads + (i < c.inflight % threads ? 1 : 0);
      workers.emplace_back(run_thread, std::cref(t), share, i, std::ref(cc),
                           std::ref(tallies[static_cast<std::size_t>(i)]));
    }
  }
  c.cpu_seconds = cpu_seconds() - cpu0;
  c.ran = true;
  fetch::latency_histogram all;
  clock::time_point last = cc.start;
  for (auto& x : tallies) {
    if (x.failure) {
      std::rethrow_exception(x.failure);
    }
    c.ok += x.ok;
    c.errors += x.errors;
    c.unfinished += x.unfinished;
    all.merge(x.latency);
    last = std::max(last, x.last_done);
    if (c.first_error.empty()) {
      c.first_error = x.first_error;
    }
  }
  // The window ends at the last completion, not at the deadline: with few slow requests
  // in flight the completions come in steps, and counting the empty tail after the last
  // step would understate req/s by up to one step. A tail longer than the slowest response
  // is no step but a stall: it counts.
  const auto tail = cc.deadline - last;
  const auto slowest = std::chrono::microseconds(all.quantile(1.0));
  c.seconds =
      std::chrono::duration<double>(c.ok > 0 && tail <= slowest ? last - cc.start : cc.deadline - cc.start).count();
  c.p50_us = all.quantile(0.5);
  c.p99_us = all.quantile(0.99);
  return c;
}

}  // namespace exitpool::bench
