#include "net/tls_stream.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

namespace exitpool::net {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t read_buffer_size = 64 * 1024;

std::atomic<std::uint64_t> handshakes_ended{0};

}  // namespace

std::uint64_t tls_stream::handshakes() {
  return handshakes_ended.load(std::memory_order_relaxed);
}

tls_stream::tls_stream(asio::ip::tcp::socket sock, ssl_ctx_st* ctx) : sock_(std::move(sock)) {
  // OpenSSL must never block the shard: sockets from net/socket.hpp are non-blocking already
  // (and Asio knows it, so this costs nothing); any other is made so here.
  if (!sock_.native_non_blocking()) {
    error_code ec;
    sock_.native_non_blocking(true, ec);
    if (ec) {
      return;
    }
  }
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr) {
    return;
  }
  // Partial writes and a retried write from another address let a caller hand OpenSSL its
  // scratch buffer and keep only what is left; released buffers make an idle connection hold
  // no 17 KiB record buffers.
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_set_fd(ssl_, sock_.native_handle()) != 1) {
    SSL_free(ssl_);
    ssl_ = nullptr;
    return;
  }
  SSL_set_connect_state(ssl_);
}

tls_stream::~tls_stream() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);  // the BIO does not own the descriptor: the socket closes it
  }
}

tls_stream::step tls_stream::outcome(int ok, std::size_t n) {
  if (ok > 0) {
    return {error_code{}, n, want::nothing};
  }
  const int saved_errno = errno;
  switch (SSL_get_error(ssl_, ok)) {
    case SSL_ERROR_WANT_READ:
      return {error_code{}, 0, want::read};
    case SSL_ERROR_WANT_WRITE:
      return {error_code{}, 0, want::write};
    case SSL_ERROR_ZERO_RETURN:
      return {asio::error::eof, 0, want::nothing};
    case SSL_ERROR_SYSCALL: {
      // A failed read or write of the descriptor; no errno means the peer closed the TCP
      // connection without close_notify (OpenSSL builds that report it this way).
      const unsigned long e = ERR_get_error();
      if (e != 0) {
        return {error_code(static_cast<int>(e), asio::error::get_ssl_category()), 0, want::nothing};
      }
      if (saved_errno == 0) {
        return {asio::ssl::error::stream_truncated, 0, want::nothing};
      }
      return {error_code(saved_errno, asio::error::get_system_category()), 0, want::nothing};
    }
    case SSL_ERROR_SSL: {
      const unsigned long e = ERR_get_error();
      if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        return {asio::ssl::error::stream_truncated, 0, want::nothing};
      }
      return {error_code(static_cast<int>(e), asio::error::get_ssl_category()), 0, want::nothing};
    }
    default:
      return {asio::ssl::error::unexpected_result, 0, want::nothing};
  }
}

tls_stream::step tls_stream::try_handshake() {
  ERR_clear_error();
  errno = 0;
  return outcome(SSL_do_handshake(ssl_), 0);
}

tls_stream::step tls_stream::try_read(void* data, std::size_t size) {
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  const int ok = SSL_read_ex(ssl_, data, size, &n);
  step s = outcome(ok, n);
  if (s.wait == want::read) {
    // About to wait, maybe for hours: give the read buffer back. OpenSSL's RELEASE_BUFFERS
    // frees it only when application data emptied it; after a record of another kind (TLS
    // 1.3's session tickets right after the handshake, a KeyUpdate) or a read-ahead that ended
    // on a record boundary it would stay (17 to 64 KiB). Nothing is freed while a record is
    // half read or a write is pending.
    SSL_free_buffers(ssl_);
  }
  return s;
}

tls_stream::step tls_stream::try_write(const void* data, std::size_t size) {
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  const int ok = SSL_write_ex(ssl_, data, size, &n);
  return outcome(ok, n);
}

tls_stream::step tls_stream::try_shutdown() {
  ERR_clear_error();
  errno = 0;
  // 0: our close_notify is out, the peer's has not come (we do not wait for it); 1: both.
  const int r = SSL_shutdown(ssl_);
  if (r >= 0) {
    return {error_code{}, 0, want::nothing};
  }
  return outcome(r, 0);
}

asio::awaitable<error_code> tls_stream::handshake() {
  // Counted when it ends in any way: done, failed, or its frame destroyed by a cancelled dial.
  struct count_end {
    count_end() = default;
    count_end(const count_end&) = delete;
    count_end& operator=(const count_end&) = delete;
    ~count_end() { handshakes_ended.fetch_add(1, std::memory_order_relaxed); }
  } const counted;
  for (;;) {
    // A closed socket's descriptor number may already belong to another connection.
    if (!sock_.is_open()) {
      co_return asio::error::bad_descriptor;
    }
    const step s = try_handshake();
    if (s.wait == want::nothing) {
      if (!s.ec) {
        // From now on, while bytes flow, one recv(2) takes up to 64 KiB of records (not a
        // 5-byte header, then a body); the buffer goes when the connection is idle (try_read).
        // Not during the handshake: a burst of new tunnels would each hold 64 KiB at once.
        SSL_set_read_ahead(ssl_, 1);
        SSL_set_default_read_buffer_len(ssl_, read_buffer_size);
      }
      co_return s.ec;
    }
    if (auto [ec] = co_await async_ready(s.wait, nothrow); ec) {
      co_return ec;
    }
  }
}

asio::awaitable<std::tuple<error_code, std::size_t>> tls_stream::read_some(asio::mutable_buffer b) {
  if (b.size() == 0) {
    co_return std::tuple<error_code, std::size_t>{};
  }
  for (;;) {
    if (!sock_.is_open()) {
      co_return std::tuple{error_code(asio::error::bad_descriptor), std::size_t{0}};
    }
    // Tried before any wait: bytes OpenSSL decrypted already come out without the socket.
    const step s = try_read(b.data(), b.size());
    if (s.wait == want::nothing) {
      co_return std::tuple{s.ec, s.n};
    }
    if (auto [ec] = co_await async_ready(s.wait, nothrow); ec) {
      co_return std::tuple{ec, std::size_t{0}};
    }
  }
}

asio::awaitable<std::tuple<error_code, std::size_t>> tls_stream::write_all(asio::const_buffer b) {
  const auto* p = static_cast<const char*>(b.data());
  std::size_t done = 0;
  while (done < b.size()) {
    if (!sock_.is_open()) {
      co_return std::tuple{error_code(asio::error::bad_descriptor), done};
    }
    const step s = try_write(p + done, b.size() - done);
    if (s.ec) {
      co_return std::tuple{s.ec, done};
    }
    done += s.n;
    if (s.wait != want::nothing) {
      if (auto [ec] = co_await async_ready(s.wait, nothrow); ec) {
        co_return std::tuple{ec, done};
      }
    }
  }
  co_return std::tuple{error_code{}, done};
}

asio::awaitable<error_code> tls_stream::shutdown() {
  // Bounded: a few rounds to flush close_notify (the caller's deadline bounds the waits).
  for (int round = 0; round < 8; ++round) {
    if (!sock_.is_open()) {
      co_return asio::error::bad_descriptor;
    }
    const step s = try_shutdown();
    if (s.wait == want::nothing) {
      co_return s.ec;
    }
    if (auto [ec] = co_await async_ready(s.wait, nothrow); ec) {
      co_return ec;
    }
  }
  co_return asio::error::timed_out;
}

}  // namespace exitpool::net
