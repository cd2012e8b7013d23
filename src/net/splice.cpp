#include "net/splice.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "net/socket.hpp"

namespace exitpool::net {

splice_pipe::splice_pipe(splice_pipe&& o) noexcept
    : read_(std::exchange(o.read_, -1)), write_(std::exchange(o.write_, -1)), capacity_(o.capacity_) {}

splice_pipe& splice_pipe::operator=(splice_pipe&& o) noexcept {
  if (this != &o) {
    close();
    read_ = std::exchange(o.read_, -1);
    write_ = std::exchange(o.write_, -1);
    capacity_ = o.capacity_;
  }
  return *this;
}

error_code splice_pipe::open(std::size_t bytes) {
  close();
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return errno_code();
  }
  read_ = fds[0];
  write_ = fds[1];
  const int size = ::fcntl(write_, F_SETPIPE_SZ, static_cast<int>(bytes));
  capacity_ = size > 0 ? static_cast<std::size_t>(size) : 64 * 1024;
  return {};
}

void splice_pipe::close() {
  if (read_ >= 0) {
    ::close(read_);
    ::close(write_);
    read_ = write_ = -1;
  }
}

splice_pipe pipe_pool::take() {
  if (idle_.empty()) {
    return {};
  }
  splice_pipe p = std::move(idle_.back());
  idle_.pop_back();
  return p;
}

void pipe_pool::give(splice_pipe p) {
  if (p.is_open() && idle_.size() < max_idle_) {
    idle_.push_back(std::move(p));
  }
}

awaitable<splice_result> splice_copy(tcp::socket& from, tcp::socket& to, std::optional<std::uint64_t> limit,
                                     splice_pipe& pipe, activity& act) {
  splice_result r;
  if (!pipe.is_open()) {
    if (auto ec = pipe.open()) {
      r.error = ec;
      co_return r;
    }
  }
  // splice(2) needs both sockets non-blocking. Ours are born so (net/socket.hpp) and Asio's
  // state says it; only a socket from elsewhere costs the ioctl.
  for (tcp::socket* sock : {&from, &to}) {
    if (!r.error && !sock->native_non_blocking()) {
      sock->native_non_blocking(true, r.error);
    }
  }
  while (!r.error && !r.eof && (!limit || r.bytes < *limit)) {
    // Fill the (empty) pipe from `from`.
    std::size_t want = pipe.capacity();
    if (limit) {
      want = static_cast<std::size_t>(std::min<std::uint64_t>(want, *limit - r.bytes));
    }
    const ssize_t n =
        ::splice(from.native_handle(), nullptr, pipe.write_end(), nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n == 0) {
      r.eof = true;
      break;
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno != EAGAIN) {
        r.error = errno_code();
        break;
      }
      auto [ec] = co_await from.async_wait(tcp::socket::wait_read, nothrow_awaitable);
      r.error = ec;
      continue;
    }
    act.touch();
    // Drain it into `to`.
    auto in_pipe = static_cast<std::size_t>(n);
    while (in_pipe > 0 && !r.error) {
      const ssize_t m =
          ::splice(pipe.read_end(), nullptr, to.native_handle(), nullptr, in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (m > 0) {
        in_pipe -= static_cast<std::size_t>(m);
        r.bytes += static_cast<std::uint64_t>(m);
        continue;
      }
      if (m < 0 && errno == EINTR) {
        continue;
      }
      if (m < 0 && errno == EAGAIN) {
        auto [ec] = co_await to.async_wait(tcp::socket::wait_write, nothrow_awaitable);
        r.error = ec;
        if (!ec) {
          act.touch();
        }
        continue;
      }
      r.error = m < 0 ? errno_code() : error_code(asio::error::broken_pipe);
    }
  }
  co_return r;
}

}  // namespace exitpool::net
