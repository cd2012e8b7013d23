#include "net/relay.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

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

awaitable<error_code> splice_pump(stream& from_s, stream& to_s, activity& act, std::uint64_t& bytes) {
  tcp::socket& from = from_s.socket();
  tcp::socket& to = to_s.socket();
  error_code ec;
  from.native_non_blocking(true, ec);
  to.native_non_blocking(true, ec);
  // The pipe is made only once this direction has something to move: an idle tunnel
  // holds two sockets, not two sockets and four pipe ends.
  if (auto [wec] = co_await from.async_wait(tcp::socket::wait_read, nothrow_awaitable); wec) {
    co_return wec;
  }
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
  error_code ec = use_splice ? co_await splice_pump(from, to, act, bytes) : co_await copy_pump(from, to, act, bytes);
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
