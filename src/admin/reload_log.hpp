#pragma once
// The pool's reload history for the dashboard: the last few loads of the pool file
// (the startup load, SIGHUP, --watch), each with its outcome.
//
// Written by the main thread (which reloads), read by the admin thread: a mutex, held
// only to copy a few entries. Never touched on a request path.

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace exitpool::admin {

struct reload_event {
  std::chrono::system_clock::time_point at{};
  bool ok = true;
  std::size_t exits = 0;  // exits in the pool afterwards (the old pool's on a refused reload)
  double seconds = 0;     // how long the reload took
  std::string what;       // "startup", "reload"; or the error, "FILE:LINE: ..."
};

class reload_log {
 public:
  explicit reload_log(std::size_t keep = 20) : keep_(keep) {}
  // Any thread.
  void add(reload_event e);
  // The kept events, newest first. Any thread.
  std::vector<reload_event> events() const;

 private:
  mutable std::mutex mu_;
  std::deque<reload_event> events_;
  std::size_t keep_;
};

}  // namespace exitpool::admin
