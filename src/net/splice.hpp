#pragma once
// Moving bytes from one plain TCP socket to another through a kernel pipe (splice(2)), so
// that they never enter user space. Two users: the tunnel relay (net/relay.hpp), once a
// flow turns out to be bulk, and the forward path (gateway/forward.cpp), for plain-HTTP
// bodies of a known length, chunk data and bodies that end at close, when both sides are
// plain TCP (a TLS exit's bytes must be decrypted in user space: those are copied).
//
// Why: a 1 MiB response copied through a buffer crosses the user/kernel boundary twice and
// costs two copies per byte; spliced, the pages move from one socket to the other.
//
// Callers: the shard that owns both sockets (non-blocking sockets, net/socket.hpp).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "net/stream.hpp"

namespace exitpool::net {

// A non-blocking pipe for splice. Move-only; closes its ends when destroyed.
class splice_pipe {
 public:
  // 256 KiB lets 256 bulk flows at once stay within the default per-user soft limit of
  // pipe pages (64 MiB); the kernel's default pipe holds 64 KiB.
  static constexpr std::size_t default_bytes = 256 * 1024;

  splice_pipe() = default;
  ~splice_pipe() { close(); }
  splice_pipe(splice_pipe&& o) noexcept;
  splice_pipe& operator=(splice_pipe&& o) noexcept;
  splice_pipe(const splice_pipe&) = delete;
  splice_pipe& operator=(const splice_pipe&) = delete;

  // Opens the pipe (non-blocking, close-on-exec) and asks for `bytes` of capacity (best
  // effort: a user over /proc/sys/fs/pipe-user-pages-soft keeps the kernel's default).
  error_code open(std::size_t bytes = default_bytes);
  bool is_open() const { return read_ >= 0; }
  void close();

  int read_end() const { return read_; }
  int write_end() const { return write_; }
  std::size_t capacity() const { return capacity_; }  // the most one splice into it moves

 private:
  int read_ = -1;
  int write_ = -1;
  std::size_t capacity_ = 0;
};

// Empty pipes kept on one shard for the next forwarded body: a body borrows one and gives it
// back when its splices ended clean, which saves pipe2, fcntl and two closes per body (4 of
// ~20 system calls per 1 MiB response). At most `max_idle` wait (2 fds each); a pipe given
// back beyond that is closed. One thread: the shard's.
class pipe_pool {
 public:
  explicit pipe_pool(std::size_t max_idle = 16) : max_idle_(max_idle) {}
  // An idle open pipe, or a closed one (splice_copy opens it).
  splice_pipe take();
  // `p` must be empty (the last splice_copy through it returned no error) or closed.
  void give(splice_pipe p);
  std::size_t idle() const { return idle_.size(); }

 private:
  std::vector<splice_pipe> idle_;
  std::size_t max_idle_;
};

struct splice_result {
  std::uint64_t bytes = 0;  // delivered to `to`
  error_code error;         // the first error of either socket or of splice itself
  bool eof = false;         // `from` ended (before `limit`, when one was given)
};

// Moves `limit` bytes (nullopt: until `from` ends) from `from` to `to` through `pipe` (opened
// here if it is not). Waits for readiness on the sockets' own executor; closing either socket
// (the session's deadline) ends the wait with an error. Each move touches `act`. On return
// the pipe is empty unless `error` is set.
awaitable<splice_result> splice_copy(tcp::socket& from, tcp::socket& to, std::optional<std::uint64_t> limit,
                                     splice_pipe& pipe, activity& act);

}  // namespace exitpool::net
