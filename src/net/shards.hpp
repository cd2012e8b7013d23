#pragma once
// The shard runtime: N threads, each running its own io_context. Work posted to a shard
// stays on that shard's thread. The contexts run without the reactor's I/O locks
// (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO): start, cancel and close a shard's sockets and
// timers on its thread only (post to it from elsewhere); posting itself stays thread-safe.

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace exitpool::net {

class shards {
 public:
  // `name`: the threads are called NAME-0, NAME-1, ... (top -H, perf, gdb).
  explicit shards(int count, std::string name = "shard");
  ~shards();
  shards(const shards&) = delete;
  shards& operator=(const shards&) = delete;

  int size() const { return static_cast<int>(contexts_.size()); }
  boost::asio::io_context& context(int i) { return *contexts_[static_cast<std::size_t>(i)]; }

  // Starts one thread per shard; returns at once.
  void start();
  // Asks every shard's loop to return (safe from any thread), then joins them.
  void stop();
  void join();
  // Stops, joins, and destroys the io_contexts: coroutines still suspended in them are
  // destroyed now, while the state they refer to (owned by the caller) is still alive.
  void shutdown();

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<std::thread> threads_;
  std::string name_;
};

// Threads the machine offers (at least 1).
int hardware_threads();

}  // namespace exitpool::net
