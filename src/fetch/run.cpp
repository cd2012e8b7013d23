#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

#include "fetch/fetcher.hpp"
#include "fetch/input.hpp"
#include "fetch/progress.hpp"
#include "fetch/result_log.hpp"
#include "fetch/runner.hpp"
#include "fetch/shard.hpp"
#include "fetch/transfer.hpp"
#include "fetch/url_set.hpp"
#include "fetch/warc.hpp"
#include "pool/pool_file.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::fetch {

namespace {

using pool::clock;
using std::chrono::milliseconds;

template <class D>
double seconds_of(D d) {
  return std::chrono::duration<double>(d).count();
}

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
      input_item item{std::string(url), std::move(parts.host), fp, parts.ok, {}};
      shard& s = *shards[item.valid ? fingerprint(item.host) % n : 0];
      while (!s.offer(item)) {
        // The shard is behind: wait for it (backpressure keeps memory bounded).
        if (g.fatal.load(std::memory_order_relaxed) || g.stopping.load(std::memory_order_relaxed)) {
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
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

long peak_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

}  // namespace

runner::runner(const fetch_config& cfg, std::string_view name, url_set& done, result_hook* hook)
    : cfg_(cfg), name_(name), g_(cfg) {
  if (cfg.output.empty()) {
    throw std::runtime_error("--output is required");
  }
  if (cfg.concurrency < 1 || cfg.per_host < 1 || cfg.retries < 0 || cfg.timeout_s <= 0) {
    throw std::runtime_error("--concurrency and --per-host must be >= 1, --retries >= 0, --timeout > 0");
  }
  prepare_process();
  std::vector<proto::exit_spec> specs;
  if (cfg.pool_file.empty()) {
    specs = proto::parse_pool_text("direct://\n", "<default pool>");
  } else {
    specs = pool::load_pool_file(cfg.pool_file);
  }
  g_.snap = pool::snapshot::build(std::move(specs), nullptr, cfg.limits);
  g_.state = std::make_unique<pool::local_state>(cfg.limits, cfg.health);
  // Throws std::invalid_argument naming a --ban-pattern that does not compile.
  g_.ban_policy = pool::ban_policy(
      cfg.ban_statuses, cfg.ban_patterns,
      std::chrono::duration_cast<milliseconds>(std::chrono::duration<double>(std::max(0.0, cfg.ban_duration_s))));
  g_.hook = hook;

  // The state dir holds a lock, so two runs never append to one output at once.
  namespace fs = std::filesystem;
  const std::string state_dir = cfg.state_dir.empty() ? cfg.output + ".state" : cfg.state_dir;
  fs::create_directories(state_dir);
  const std::string lock_path = state_dir + "/lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (lock_fd_ >= 0) {
      ::close(lock_fd_);
    }
    throw std::runtime_error(
        fmt::format("{}: another {} is using this state dir (or it is not writable)", lock_path, name_));
  }
  if (!cfg.bodies_dir.empty()) {
    fs::create_directories(cfg.bodies_dir);
  }
  std::string warcinfo;
  if (!cfg.warc_path.empty()) {
    const std::string info_block = "software: exitpool " + name_ + " 0.1 (libcurl " +
                                   std::string(curl_version_info(CURLVERSION_NOW)->version) +
                                   ")\r\nformat: WARC File Format 1.1\r\nconformsTo: "
                                   "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\n";
    std::random_device rd;
    append_warc_gz(warcinfo,
                   {"warcinfo", warc_record_id((std::uint64_t(rd()) << 32) | rd(), (std::uint64_t(rd()) << 32) | rd()),
                    warc_date_now(), "", "", "", "application/warc-fields", info_block});
  }
  log_ = std::make_unique<result_log>(cfg.output, cfg.resume, done, scanned_, cfg.warc_path, warcinfo);
  g_.log = log_.get();
  if (scanned_.lines > 0 || scanned_.truncated_bytes > 0) {
    std::string msg = fmt::format("{}: resuming: {} URLs already in {}", name_, scanned_.lines, cfg.output);
    if (scanned_.truncated_bytes > 0) {
      msg += fmt::format(" (cut {} bytes of a torn tail)", scanned_.truncated_bytes);
    }
    if (scanned_.warc_truncated_bytes > 0 && scanned_.lines > 0) {
      msg += fmt::format("; cut {} bytes of WARC records without a line", scanned_.warc_truncated_bytes);
    }
    std::fprintf(stderr, "%s\n", msg.c_str());
  }
  const int threads = cfg.threads > 0 ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  for (int i = 0; i < threads; ++i) {
    shards_.push_back(make_shard(g_, i, 4096));
    g_.shards.push_back(shards_.back().get());
  }
}

runner::~runner() {
  for (auto& w : workers_) {
    if (w.joinable()) {
      g_.set_fatal("stopped");
      for (auto& s : shards_) {
        s->wake();
      }
      w.join();
    }
  }
  shards_.clear();
  log_.reset();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
  }
  curl_global_cleanup();
}

void runner::start() {
  t0_ = clock::now();
  for (auto& s : shards_) {
    workers_.emplace_back([s = s.get()] { s->run(); });
  }
  g_signals.store(0);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

int runner::wait(const watch& w) {
  const auto& cfg = cfg_;
  auto& g = g_;
  auto& shards = shards_;
  // Progress and fsync, on this thread.
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const double interval = cfg.progress_interval_s > 0 ? cfg.progress_interval_s : (tty ? 0.25 : 5.0);
  auto next_progress = t0_ + from_seconds(interval);
  auto next_sync = t0_ + from_seconds(cfg.fsync_interval_s);
  progress_meter meter(w.total, t0_);
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
  // progress.hpp's lines say "fetch:"; a crawl's say "crawl:".
  auto named = [&](std::string line) {
    if (line.rfind("fetch:", 0) == 0) {
      line.replace(0, 5, name_);
    }
    return line;
  };
  bool wrote_tty_line = false;
  std::vector<std::uint64_t> written(shards.size());
  while (!all_finished()) {
    std::this_thread::sleep_for(w.period);
    if (g_signals.load() > 0 && !g.stopping.exchange(true)) {
      std::fprintf(stderr, "%s%s: stopping: finishing the requests in flight (signal again to stop now)\n",
                   wrote_tty_line ? "\n" : "", name_.c_str());
      for (auto& s : shards) {
        s->wake();
      }
    }
    const auto now = clock::now();
    if (w.tick && !g.stopping.load()) {
      w.tick(now);
    }
    if (now >= next_sync || (w.sync_now && !g.stopping.load() && w.sync_now())) {
      for (std::size_t i = 0; i < shards.size(); ++i) {
        written[i] = shards[i]->counters.lines_written.load(std::memory_order_acquire);
      }
      if (!log_->sync()) {
        g.set_fatal(fmt::format("{}: fsync failed: {}", cfg.output, std::strerror(errno)));
      } else if (w.on_synced) {
        w.on_synced(written);
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
      std::string line = named(meter.line(p, now));
      if (w.progress_suffix) {
        line += w.progress_suffix();
      }
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
  for (auto& t : workers_) {
    t.join();
  }
  workers_.clear();
  const double elapsed = seconds_of(clock::now() - t0_);
  if (!log_->sync()) {
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
    std::fprintf(stderr, "%s\n", named(line).c_str());
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (g.fatal.load()) {
    std::fprintf(stderr, "%s: fatal: %s\n", name_.c_str(), g.fatal_msg.c_str());
    return 1;
  }
  if (g.stopping.load()) {
    std::fprintf(stderr,
                 "%s: interrupted: the output has every finished URL; run the same command again to "
                 "fetch the rest\n",
                 name_.c_str());
    return 3;
  }
  return 0;
}

int run_fetch(const fetch_config& cfg) {
  // Sized up front when the input's line count is known: no doubling (and no moment with
  // both the old and the new table) on the way to 10 million URLs.
  const auto total_lines = count_lines(cfg.input);
  url_set seen(std::max<std::uint64_t>(1 << 16, total_lines.value_or(0)));
  runner r(cfg, "fetch", seen, nullptr);
  line_reader reader(cfg.input);
  r.start();
  std::thread reader_thread([&] { read_input(r.state(), reader, seen, r.shards()); });
  runner::watch w;
  w.total = total_lines;
  const int rc = r.wait(w);
  reader_thread.join();
  return rc;
}

}  // namespace exitpool::fetch
