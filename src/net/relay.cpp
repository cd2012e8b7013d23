#include "net/relay.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cstring>
#include <memory>

#include "net/socket.hpp"

namespace exitpool::net {

namespace {

// Stops both sides at once after an error, so the other direction does not wait
// for the idle timeout: shutdown makes its pending and future reads see EOF.
void abort_both(stream& a, stream& b) {
  error_code ec;
  a.socket().shutdown(tcp::socket::shutdown_both, ec);
  b.socket().shutdown(tcp::socket::shutdown_both, ec);
}

// This thread's scratch space for bytes that are sent on before the handler that read
// them returns (so it is never held across a wait).
constexpr std::size_t scratch_size = 64 * 1024;
char* thread_scratch() {
  thread_local std::unique_ptr<char[]> scratch = std::make_unique_for_overwrite<char[]>(scratch_size);
  return scratch.get();
}

// The buffered copy (TLS on either side). An idle direction waits in a small buffer that
// lives in the coroutine frame; a read that fills it means a flow, which gets 16 KiB
// until a read comes back small again: idle tunnels hold 2 x 512 bytes here, not 2 x 16 KiB.
awaitable<error_code> copy_pump(stream& from, stream& to, activity& act, std::uint64_t& bytes) {
  constexpr std::size_t small_size = 512;
  constexpr std::size_t big_size = 16 * 1024;
  std::array<char, small_size> small;
  std::unique_ptr<char[]> big;
  for (;;) {
    char* const buf = big ? big.get() : small.data();
    const std::size_t cap = big ? big_size : small_size;
    auto [ec, n] = co_await from.read_some(asio::buffer(buf, cap));
    if (n > 0) {
      bytes += n;
      act.touch();
      auto [wec, wn] = co_await to.write_all(asio::buffer(buf, n));
      if (wec) {
        co_return wec;
      }
      if (!big && n == small_size) {
        big = std::make_unique_for_overwrite<char[]>(big_size);
      } else if (big && n < small_size) {
        big.reset();
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

awaitable<error_code> pump(stream& from, stream& to, activity& act, std::uint64_t& bytes) {
  error_code ec = co_await copy_pump(from, to, act, bytes);
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
  auto [up_ec, down_ec] =
      co_await (pump(client, upstream, act, r.bytes_up) && pump(upstream, client, act, r.bytes_down));
  r.error = up_ec ? up_ec : down_ec;
  co_return r;
}

// ---- plain_relay ----

plain_relay::plain_relay(stream& client, stream& upstream, activity& act) : act_(act) {
  up_.from = &client.socket();
  up_.to = &upstream.socket();
  down_.from = &upstream.socket();
  down_.to = &client.socket();
}

plain_relay::~plain_relay() = default;

void plain_relay::start(std::string to_upstream, std::string to_client, std::shared_ptr<void> owner,
                        std::function<void(const relay_result&)> done) {
  // The owner is held by the pending operations alone (not by this object, which the
  // owner holds): a relay that never finishes, such as one cut by the shutdown of its
  // io_context, frees everything when its operations are destroyed.
  const auto& keep = owner;
  done_ = std::move(done);
  // Taken only when there is something to send: an empty handshake buffer may still own
  // kilobytes of capacity, which an idle tunnel must not keep.
  if (!to_upstream.empty()) {
    up_.spill = std::move(to_upstream);
  }
  if (!to_client.empty()) {
    down_.spill = std::move(to_client);
  }
  for (direction* d : {&up_, &down_}) {
    if (d->spill.empty()) {
      read(*d, keep);
    } else {
      d->bytes += d->spill.size();
      write_spill(*d, keep);
    }
  }
}

void plain_relay::read(direction& d, const owner_ptr& keep) {
  d.from->async_read_some(asio::buffer(d.small),
                          [this, &d, keep](error_code ec, std::size_t n) { on_read(d, ec, n, keep); });
}

void plain_relay::on_read(direction& d, error_code ec, std::size_t n, const owner_ptr& keep) {
  if (n == 0) {
    if (ec == asio::error::eof) {
      pass_fin(d);
      finish(d, error_code{}, keep);
    } else {
      finish(d, ec ? ec : error_code(asio::error::connection_aborted), keep);
    }
    return;
  }
  act_.touch();
  const char* data = d.small.data();
  std::size_t len = n;
  if (n == d.small.size()) {
    // More may be waiting: take it now, into the thread's scratch (never held across a wait).
    char* scratch = thread_scratch();
    std::memcpy(scratch, d.small.data(), n);
    ssize_t m = ::recv(d.from->native_handle(), scratch + n, scratch_size - n, MSG_DONTWAIT);
    if (m > 0) {
      len += static_cast<std::size_t>(m);
    }
    data = scratch;
    d.bulk = len == scratch_size;
  }
  d.bytes += len;
  ssize_t w = ::send(d.to->native_handle(), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w < 0 && errno != EAGAIN && errno != EINTR) {
    finish(d, errno_code(), keep);
    return;
  }
  const std::size_t sent = w > 0 ? static_cast<std::size_t>(w) : 0;
  if (sent < len) {
    d.spill.assign(data + sent, len - sent);  // the peer is slower: keep the rest until it drains
    write_spill(d, keep);
    return;
  }
  after_write(d, keep);
}

void plain_relay::write_spill(direction& d, const owner_ptr& keep) {
  asio::async_write(*d.to, asio::buffer(d.spill), [this, &d, keep](error_code ec, std::size_t) {
    std::string().swap(d.spill);
    if (ec) {
      finish(d, ec, keep);
      return;
    }
    after_write(d, keep);
  });
}

void plain_relay::after_write(direction& d, const owner_ptr& keep) {
  if (!d.bulk) {
    read(d, keep);
    return;
  }
  if (!d.pipe.is_open()) {
    // splice relies on non-blocking sockets: ours are born so (net/socket.hpp) and Asio's state
    // says it; only a socket from elsewhere costs the ioctl.
    error_code ec;
    for (tcp::socket* sock : {d.from, d.to}) {
      if (!sock->native_non_blocking()) {
        sock->native_non_blocking(true, ec);
      }
    }
    if (auto pec = d.pipe.open()) {
      finish(d, pec, keep);
      return;
    }
  }
  splice_in(d, keep);
}

void plain_relay::splice_in(direction& d, const owner_ptr& keep) {
  const int in = d.from->native_handle();
  for (;;) {
    ssize_t n =
        ::splice(in, nullptr, d.pipe.write_end(), nullptr, d.pipe.capacity(), SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n == 0) {
      pass_fin(d);
      finish(d, error_code{}, keep);
      return;
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno != EAGAIN) {
        finish(d, errno_code(), keep);
        return;
      }
      d.from->async_wait(tcp::socket::wait_read, [this, &d, keep](error_code ec) {
        if (ec) {
          finish(d, ec, keep);
          return;
        }
        splice_in(d, keep);
      });
      return;
    }
    d.bytes += static_cast<std::uint64_t>(n);
    act_.touch();
    d.in_pipe = static_cast<std::size_t>(n);
    if (!splice_out(d, keep)) {
      return;  // waiting for the peer to accept more, or finished
    }
  }
}

// Drains the pipe into `to`. False when it had to wait (it resumes by itself) or failed.
bool plain_relay::splice_out(direction& d, const owner_ptr& keep) {
  const int out = d.to->native_handle();
  while (d.in_pipe > 0) {
    ssize_t m = ::splice(d.pipe.read_end(), nullptr, out, nullptr, d.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m > 0) {
      d.in_pipe -= static_cast<std::size_t>(m);
      continue;
    }
    if (m < 0 && errno == EINTR) {
      continue;
    }
    if (m < 0 && errno == EAGAIN) {
      d.to->async_wait(tcp::socket::wait_write, [this, &d, keep](error_code ec) {
        if (ec) {
          finish(d, ec, keep);
          return;
        }
        if (splice_out(d, keep)) {
          splice_in(d, keep);
        }
      });
      return false;
    }
    finish(d, m < 0 ? errno_code() : error_code(asio::error::broken_pipe), keep);
    return false;
  }
  return true;
}

void plain_relay::pass_fin(direction& d) {
  // The peer finished sending: pass the FIN on and keep the other direction open. When the
  // other direction has ended too, both sockets are closed next (the owner's `done`), and
  // close sends the FIN itself: nothing is left unread on `to` (its reads saw EOF), so it
  // is a FIN, not a reset. One shutdown less per tunnel.
  const direction& other = &d == &up_ ? down_ : up_;
  if (!other.finished) {
    error_code ec;
    d.to->shutdown(tcp::socket::shutdown_send, ec);
  }
}

void plain_relay::finish(direction& d, error_code ec, const owner_ptr& keep) {
  d.finished = true;
  d.pipe.close();
  if (ec && !error_) {
    error_ = ec;
    // Stop the other direction at once rather than at the idle timeout: shutdown makes
    // its pending and future reads see EOF.
    error_code sec;
    up_.from->shutdown(tcp::socket::shutdown_both, sec);
    up_.to->shutdown(tcp::socket::shutdown_both, sec);
  }
  if (!up_.finished || !down_.finished) {
    return;
  }
  relay_result r;
  r.bytes_up = up_.bytes;
  r.bytes_down = down_.bytes;
  r.error = error_;
  auto done = std::move(done_);
  const owner_ptr hold = keep;  // the owner may free this object in `done`
  done(r);
}

}  // namespace exitpool::net
