#include "net/relay.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>

#include <boost/asio/experimental/awaitable_operators.hpp>

namespace exitpool::net {

namespace {

class pipe_pair {
 public:
  pipe_pair() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
      r_ = fds[0];
      w_ = fds[1];
    }
  }
  ~pipe_pair() {
    if (r_ >= 0) {
      ::close(r_);
      ::close(w_);
    }
  }
  pipe_pair(const pipe_pair&) = delete;
  pipe_pair& operator=(const pipe_pair&) = delete;
  bool ok() const { return r_ >= 0; }
  int r() const { return r_; }
  int w() const { return w_; }

 private:
  int r_ = -1;
  int w_ = -1;
};

// Stops both sides at once after an error, so the other direction does not wait
// for the idle timeout: shutdown makes its pending and future reads see EOF.
void abort_both(stream& a, stream& b) {
  error_code ec;
  a.socket().shutdown(tcp::socket::shutdown_both, ec);
  b.socket().shutdown(tcp::socket::shutdown_both, ec);
}

error_code errno_code() { return error_code(errno, boost::system::system_category()); }

// This thread's scratch space for reads that are forwarded before the coroutine
// suspends again (so it is never held across a suspension).
constexpr std::size_t scratch_size = 64 * 1024;
char* thread_scratch() {
  thread_local std::unique_ptr<char[]> scratch = std::make_unique_for_overwrite<char[]>(scratch_size);
  return scratch.get();
}

// Moves bytes with splice(2) through a pipe (no copy into user space) until EOF or an
// error. For bulk flows: the pipe costs three syscalls to make and close.
awaitable<error_code> splice_loop(tcp::socket& from, tcp::socket& to, activity& act, std::uint64_t& bytes) {
  error_code ec;
  // Both sockets already went through asynchronous operations, which make them
  // non-blocking; splice relies on it, so say so explicitly once per bulk flow.
  from.native_non_blocking(true, ec);
  to.native_non_blocking(true, ec);
  pipe_pair p;
  if (!p.ok()) {
    co_return errno_code();
  }
  const int in = from.native_handle();
  const int out = to.native_handle();
  constexpr std::size_t chunk = 1 << 16;
  for (;;) {
    ssize_t n = ::splice(in, nullptr, p.w(), nullptr, chunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n == 0) {
      // The peer finished sending: pass the FIN on, keep the other direction open.
      to.shutdown(tcp::socket::shutdown_send, ec);
      co_return error_code{};
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno != EAGAIN) {
        co_return errno_code();
      }
      auto [wec] = co_await from.async_wait(tcp::socket::wait_read, nothrow_awaitable);
      if (wec) {
        co_return wec;
      }
      continue;
    }
    bytes += static_cast<std::uint64_t>(n);
    act.touch();
    // Drain the pipe completely before reading again, so it never fills up.
    std::size_t in_pipe = static_cast<std::size_t>(n);
    while (in_pipe > 0) {
      ssize_t m = ::splice(p.r(), nullptr, out, nullptr, in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (m > 0) {
        in_pipe -= static_cast<std::size_t>(m);
        continue;
      }
      if (m < 0 && errno == EINTR) {
        continue;
      }
      if (m < 0 && errno == EAGAIN) {
        auto [wec] = co_await to.async_wait(tcp::socket::wait_write, nothrow_awaitable);
        if (wec) {
          co_return wec;
        }
        continue;
      }
      co_return m < 0 ? errno_code() : error_code(asio::error::broken_pipe);
    }
  }
}

// One direction of a plain TCP tunnel. Most tunnels carry small messages: each is read
// by an ordinary (speculative) asynchronous read into a small buffer and sent on at
// once, so a short tunnel costs no pipe and no extra epoll registration. A read that
// fills 64 KiB marks a bulk flow, which moves on to splice(2).
awaitable<error_code> plain_pump(stream& from_s, stream& to_s, activity& act, std::uint64_t& bytes) {
  tcp::socket& from = from_s.socket();
  tcp::socket& to = to_s.socket();
  // The pending read's buffer stays in this frame while the tunnel is idle: keep it small.
  std::array<char, 512> small;
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(small), nothrow_awaitable);
    if (n == 0) {
      if (ec == asio::error::eof) {
        error_code sec;
        to.shutdown(tcp::socket::shutdown_send, sec);
        co_return error_code{};
      }
      co_return ec ? ec : error_code(asio::error::connection_aborted);
    }
    act.touch();
    const char* data = small.data();
    std::size_t len = n;
    bool bulk = false;
    if (n == small.size()) {
      // More may be waiting: take it now, without suspending, into the thread's scratch.
      char* scratch = thread_scratch();
      std::memcpy(scratch, small.data(), n);
      ssize_t m = ::recv(from.native_handle(), scratch + n, scratch_size - n, MSG_DONTWAIT);
      if (m > 0) {
        len += static_cast<std::size_t>(m);
      }
      data = scratch;
      bulk = len == scratch_size;
    }
    bytes += len;
    ssize_t w = ::send(to.native_handle(), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
      co_return errno_code();
    }
    const std::size_t sent = w > 0 ? static_cast<std::size_t>(w) : 0;
    if (sent < len) {
      // The peer is slower: keep the rest (the scratch is shared) until it drains.
      std::string rest(data + sent, len - sent);
      auto [wec, wn] = co_await asio::async_write(to, asio::buffer(rest), nothrow_awaitable);
      if (wec) {
        co_return wec;
      }
    }
    if (bulk) {
      co_return co_await splice_loop(from, to, act, bytes);
    }
  }
}

awaitable<error_code> copy_pump(stream& from, stream& to, activity& act, std::uint64_t& bytes) {
  auto buf = std::make_unique<char[]>(16 * 1024);
  for (;;) {
    auto [ec, n] = co_await from.read_some(asio::buffer(buf.get(), 16 * 1024));
    if (n > 0) {
      bytes += n;
      act.touch();
      auto [wec, wn] = co_await to.write_all(asio::buffer(buf.get(), n));
      if (wec) {
        co_return wec;
      }
    }
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      co_await to.shutdown_send();
      co_return error_code{};
    }
    if (ec) {
      co_return ec;
    }
  }
}

awaitable<error_code> pump(stream& from, stream& to, activity& act, std::uint64_t& bytes, bool use_splice) {
  error_code ec = use_splice ? co_await plain_pump(from, to, act, bytes) : co_await copy_pump(from, to, act, bytes);
  if (ec) {
    abort_both(from, to);
  }
  co_return ec;
}

}  // namespace

awaitable<relay_result> relay(stream& client, stream& upstream, std::string to_upstream, std::string to_client,
                              activity& act) {
  using namespace asio::experimental::awaitable_operators;
  relay_result r;
  if (!to_upstream.empty()) {
    if (auto [ec, n] = co_await upstream.write_all(asio::buffer(to_upstream)); ec) {
      r.error = ec;
      co_return r;
    }
    r.bytes_up += to_upstream.size();
  }
  if (!to_client.empty()) {
    if (auto [ec, n] = co_await client.write_all(asio::buffer(to_client)); ec) {
      r.error = ec;
      co_return r;
    }
    r.bytes_down += to_client.size();
  }
  // A tunnel may stay open for hours: give back the handshake buffers first.
  std::string().swap(to_upstream);
  std::string().swap(to_client);
  r.spliced = client.is_plain() && upstream.is_plain();
  auto [up_ec, down_ec] = co_await (pump(client, upstream, act, r.bytes_up, r.spliced) &&
                                    pump(upstream, client, act, r.bytes_down, r.spliced));
  r.error = up_ec ? up_ec : down_ec;
  co_return r;
}

}  // namespace exitpool::net
