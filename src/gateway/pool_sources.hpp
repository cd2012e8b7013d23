#pragma once
// The pool's sources at run time (`--pool`, repeatable: files and http(s):// URLs): the last
// good list of each URL source, and the thread that refreshes them. The decisions (what an
// answer means, when to fetch next, how lists merge) are pool/source.hpp; this is their I/O.
//
// There is one way to change the pool: a reload (gateway/server.hpp: reload_pool). A URL
// source whose list changed calls `on_change` from the refresh thread; the server then
// reloads on its main thread, and the reload collects every source (files read again, each
// URL's last good list). A failed fetch changes nothing: the last good list stays.
//
// Why one thread with blocking libcurl, not the shards' Asio loops: a fetch is rare (once a
// refresh interval per source), must not cost a shard's clients any latency, and libcurl
// brings HTTPS, proxies-off, decompression and timeouts in a few lines. Sources are fetched
// one after another: a slow source delays the others by at most its --pool-timeout.
//
// Threading: fetch_all_once and collect on the main thread; start/stop on the main thread;
// refresh_now and status from any thread (a mutex guards the states: never a request path).

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pool/source.hpp"

namespace exitpool::gateway {

class pool_sources {
 public:
  // `specs` passed check_source. `ca_file`: extra CA bundle for https:// sources.
  pool_sources(std::vector<pool::source_spec> specs, std::string ca_file);
  ~pool_sources();
  pool_sources(const pool_sources&) = delete;
  pool_sources& operator=(const pool_sources&) = delete;

  // Startup: fetches each URL source once. Throws std::runtime_error("SOURCE: why") for the
  // first that fails: the gateway does not start with a source missing (README: "Pool sources").
  void fetch_all_once();

  // The pool as the sources have it now: every file read again, every URL's last good list,
  // merged in --pool order (duplicates: the first source's exit). Throws proto::pool_error or
  // std::runtime_error naming the file on a bad or unreadable file.
  pool::merged_pool collect();

  std::vector<std::string> files() const;  // the file sources (--watch)
  bool has_urls() const;
  // "pool.txt", or "pool.txt + http://api/list?key={key}": for log lines. Never the key.
  std::string describe() const;

  // Starts the refresh thread (when there is a URL source): each source is fetched when its
  // --pool-refresh is due, or at once after refresh_now. `on_change(source name)` runs on that
  // thread after a fetch brought a new list.
  void start(std::function<void(const std::string&)> on_change);
  void refresh_now();  // SIGHUP: every URL source is fetched at once. Any thread.
  void stop();         // joins the thread; a fetch in progress ends within its timeout

  std::vector<pool::source_status> status(pool::time_point now) const;  // any thread

 private:
  struct entry {
    pool::source_spec spec;
    pool::source_state state;
    std::size_t file_exits = 0;  // files: exits at the last read (their lists are not kept)
    bool forced = false;         // refresh_now: fetch at once
  };
  // Fetches `e` once (no lock held during the transfer) and applies the result under the lock.
  pool::fetch_decision fetch(entry& e, double jitter01);
  void run();

  std::vector<entry> entries_;  // fixed after construction; their states under mu_
  std::string ca_file_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::function<void(const std::string&)> on_change_;
  std::thread thread_;
};

}  // namespace exitpool::gateway
