#pragma once
// The run around the fetch shards, shared by `fetch` and `crawl`: the pool and the ban
// policy from the options, the state dir's lock, the output (scanned for resume), N
// shards on their threads, and on the caller's thread the loop that watches them (SIGINT
// and SIGTERM, periodic fsync, progress lines) and prints the summary.
//
// What differs is who feeds the shards: fetch's input reader thread, or crawl's frontier
// (the `tick` of wait(), on the caller's thread).
//
// Threads: construct, start() and wait() on one thread (the main thread).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fetch/fetcher.hpp"
#include "fetch/result_log.hpp"
#include "fetch/shard.hpp"
#include "fetch/url_set.hpp"

namespace exitpool::fetch {

class runner {
 public:
  // Everything but the threads: throws std::runtime_error on configuration or I/O errors
  // (bad pool file, state dir locked, output not writable). `done` receives the
  // fingerprints of the URLs already in the output (resume). `hook`: crawl's, or null.
  // `name` prefixes messages ("fetch", "crawl").
  runner(const fetch_config& cfg, std::string_view name, url_set& done, result_hook* hook);
  ~runner();
  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  shared_state& state() { return g_; }
  std::vector<std::unique_ptr<shard>>& shards() { return shards_; }
  const scan_info& scanned() const { return scanned_; }

  // Starts the shard threads.
  void start();

  struct watch {
    std::optional<std::uint64_t> total;            // input size, when known (progress ETA)
    std::chrono::milliseconds period{50};          // between rounds of the loop
    std::function<void(pool::time_point)> tick;    // each round, before anything else (may be empty)
    std::function<std::string()> progress_suffix;  // appended to each progress line (may be empty)
    // After each periodic fsync of the output: every shard's lines_written as it was just
    // before the fsync (those lines are durable now). May be empty.
    std::function<void(const std::vector<std::uint64_t>&)> on_synced;
    // Asked each round: true to fsync now rather than at the next --fsync-interval (a shared
    // crawl's worker whose last lines wait to be durable before it can acknowledge them,
    // with nothing else left to do). May be empty.
    std::function<bool()> sync_now;
  };
  // Watches until every shard has finished, then prints the summary. Returns the exit
  // code: 0 done, 1 fatal error, 3 stopped by a signal.
  int wait(const watch& w);

 private:
  const fetch_config& cfg_;
  std::string name_;
  shared_state g_;
  scan_info scanned_;
  std::unique_ptr<result_log> log_;
  int lock_fd_ = -1;
  std::vector<std::unique_ptr<shard>> shards_;
  std::vector<std::thread> workers_;
  pool::time_point t0_{};
};

}  // namespace exitpool::fetch
