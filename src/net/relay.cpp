#include "net/relay.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/ssl/error.hpp>
#include <cstring>
#include <memory>
#include <utility>

#include "net/socket.hpp"

namespace exitpool::net {

namespace {

// This thread's scratch space for bytes that are sent on before the handler that read
// them returns (so it is never held across a wait).
constexpr std::size_t scratch_size = 64 * 1024;
char* thread_scratch() {
  thread_local std::unique_ptr<char[]> scratch = std::make_unique_for_overwrite<char[]>(scratch_size);
  return scratch.get();
}

// The end of a handler-driven relay (both directions finished): runs `done` once.
void report(std::uint64_t up, std::uint64_t down, error_code error, std::function<void(const relay_result&)>& done,
            const std::shared_ptr<void>& keep) {
  relay_result r;
  r.bytes_up = up;
  r.bytes_down = down;
  r.error = error;
  auto run = std::move(done);
  const std::shared_ptr<void> hold = keep;  // the owner may free the relay in `done`
  run(r);
}

}  // namespace

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
  if (up_.finished && down_.finished) {
    report(up_.bytes, down_.bytes, error_, done_, keep);
  }
}

// ---- tls_relay ----

namespace {

// One TLS record's worth of plaintext: what a read moves while a flow runs.
constexpr std::size_t record_size = 16 * 1024;

bool ended(error_code ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

}  // namespace

tls_relay::tls_relay(stream& client, stream& upstream, activity& act)
    : client_(client.socket()), tls_(*upstream.tls()), act_(act) {}

tls_relay::~tls_relay() = default;

void tls_relay::start(std::string to_upstream, std::string to_client, std::shared_ptr<void> owner,
                      std::function<void(const relay_result&)> done) {
  const auto& keep = owner;  // held by the pending operations alone, as in plain_relay
  done_ = std::move(done);
  if (!to_upstream.empty()) {
    up_.bytes += to_upstream.size();
    up_.spill = std::move(to_upstream);
    write_upstream(up_.spill.data(), up_.spill.size(), keep);
  } else {
    read_client(keep);
  }
  if (!to_client.empty()) {
    down_.bytes += to_client.size();
    down_.spill = std::move(to_client);
    write_client_spill(keep);
  } else {
    read_upstream(keep);
  }
}

// An idle client direction: a readiness wait, no buffer.
void tls_relay::read_client(const owner_ptr& keep) {
  client_.async_wait(tcp::socket::wait_read, [this, keep](error_code ec) {
    if (ec) {
      finish(up_, ec, keep);
      return;
    }
    on_client_readable(keep);
  });
}

void tls_relay::on_client_readable(const owner_ptr& keep) {
  char* buf = thread_scratch();
  const ssize_t n = ::recv(client_.native_handle(), buf, record_size, MSG_DONTWAIT);
  if (n > 0) {
    up_.bytes += static_cast<std::uint64_t>(n);
    act_.touch();
    write_upstream(buf, static_cast<std::size_t>(n), keep);
    return;
  }
  if (n == 0) {
    close_upstream(keep);  // the client finished sending
    return;
  }
  if (errno == EAGAIN || errno == EINTR) {
    read_client(keep);
    return;
  }
  finish(up_, errno_code(), keep);
}

// Writes data (the thread's scratch, or up_.spill when resuming) to the exit. What OpenSSL
// cannot take yet moves to up_.spill, which the retry offers again.
void tls_relay::write_upstream(const char* data, std::size_t len, const owner_ptr& keep) {
  std::size_t off = 0;
  while (off < len) {
    if (!tls_.socket().is_open()) {
      finish(up_, asio::error::operation_aborted, keep);
      return;
    }
    const auto s = tls_.try_write(data + off, len - off);
    if (s.ec) {
      finish(up_, s.ec, keep);
      return;
    }
    off += s.n;
    if (s.wait != tls_stream::want::nothing) {
      if (data == up_.spill.data()) {
        up_.spill.erase(0, off);
      } else {
        up_.spill.assign(data + off, len - off);
      }
      tls_.async_ready(s.wait, [this, keep](error_code ec) {
        if (ec) {
          finish(up_, ec, keep);
          return;
        }
        write_upstream(up_.spill.data(), up_.spill.size(), keep);
      });
      return;
    }
  }
  std::string().swap(up_.spill);
  read_client(keep);
}

// close_notify for the client's FIN. Its failure changes nothing: the client is done anyway.
void tls_relay::close_upstream(const owner_ptr& keep) {
  if (!tls_.socket().is_open()) {
    finish(up_, error_code{}, keep);
    return;
  }
  const auto s = tls_.try_shutdown();
  if (s.wait == tls_stream::want::nothing) {
    finish(up_, error_code{}, keep);
    return;
  }
  tls_.async_ready(s.wait, [this, keep](error_code ec) {
    if (ec) {
      finish(up_, error_code{}, keep);
      return;
    }
    close_upstream(keep);
  });
}

// Reads the exit until OpenSSL needs the socket: decrypted bytes OpenSSL already holds come
// out before any wait, so a tunnel never stalls with data inside the SSL object. Records are
// gathered in the thread's scratch (up to 64 KiB) and sent to the client together.
void tls_relay::read_upstream(const owner_ptr& keep) {
  char* buf = thread_scratch();
  std::size_t filled = 0;
  // A bounded run of records per turn, then the rest after other connections had theirs.
  for (int turn = 0; turn < 64; ++turn) {
    if (!tls_.socket().is_open()) {
      finish(down_, asio::error::operation_aborted, keep);
      return;
    }
    const auto s = tls_.try_read(buf + filled, std::min(record_size, scratch_size - filled));
    if (s.wait == tls_stream::want::nothing && !s.ec) {
      filled += s.n;
      down_.bytes += s.n;
      act_.touch();
      if (scratch_size - filled < record_size) {
        if (!send_client(buf, filled, error_code{}, keep)) {
          return;
        }
        filled = 0;
      }
      continue;
    }
    // Nothing more for now: what was read goes out first.
    if (filled > 0 && !send_client(buf, filled, s.ec, keep)) {
      return;
    }
    upstream_stopped(s, keep);
    return;
  }
  if (filled > 0 && !send_client(buf, filled, error_code{}, keep)) {
    return;
  }
  asio::post(client_.get_executor(), [this, keep] { read_upstream(keep); });
}

// The exit has nothing more now (wait for it), or has ended (pass it on), or failed.
void tls_relay::upstream_stopped(const tls_stream::step& s, const owner_ptr& keep) {
  if (s.wait != tls_stream::want::nothing) {
    tls_.async_ready(s.wait, [this, keep](error_code ec) {
      if (ec) {
        finish(down_, ec, keep);
        return;
      }
      read_upstream(keep);
    });
    return;
  }
  if (ended(s.ec)) {
    error_code sec;
    client_.shutdown(tcp::socket::shutdown_send, sec);
    finish(down_, error_code{}, keep);
    return;
  }
  finish(down_, s.ec, keep);
}

// Sends what was read to the client. False when the client could not take it all at once:
// the rest went to down_.spill, and the exit is read again (or `end` passed on) once it drained.
bool tls_relay::send_client(const char* data, std::size_t len, error_code end, const owner_ptr& keep) {
  const ssize_t w = ::send(client_.native_handle(), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w < 0 && errno != EAGAIN && errno != EINTR) {
    finish(down_, errno_code(), keep);
    return false;
  }
  const std::size_t sent = w > 0 ? static_cast<std::size_t>(w) : 0;
  if (sent == len) {
    return true;
  }
  down_.spill.assign(data + sent, len - sent);  // the client is slower: keep the rest
  down_end_ = end;
  write_client_spill(keep);
  return false;
}

void tls_relay::write_client_spill(const owner_ptr& keep) {
  asio::async_write(client_, asio::buffer(down_.spill), [this, keep](error_code ec, std::size_t) {
    std::string().swap(down_.spill);
    if (ec) {
      finish(down_, ec, keep);
      return;
    }
    if (down_end_) {
      upstream_stopped(tls_stream::step{std::exchange(down_end_, error_code{})}, keep);
      return;
    }
    read_upstream(keep);
  });
}

void tls_relay::finish(direction& d, error_code ec, const owner_ptr& keep) {
  if (d.finished) {
    return;
  }
  d.finished = true;
  if (ec && !error_) {
    error_ = ec;
    // Stop the other direction at once: shutdown makes its pending waits see EOF.
    error_code sec;
    client_.shutdown(tcp::socket::shutdown_both, sec);
    tls_.socket().shutdown(tcp::socket::shutdown_both, sec);
  }
  if (up_.finished && down_.finished) {
    report(up_.bytes, down_.bytes, error_, done_, keep);
  }
}

}  // namespace exitpool::net
