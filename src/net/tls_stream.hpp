#pragma once
// A client TLS connection (to an https:// exit) driven directly over its TCP socket.
//
// OpenSSL reads and writes the non-blocking socket's descriptor itself (SSL_set_fd: a socket
// BIO that does not own the descriptor); when it needs the socket to become readable or
// writable, the operation waits for that through the socket's reactor and tries again. There
// is no memory BIO pair and no Asio engine: with SSL_MODE_RELEASE_BUFFERS an idle connection
// holds no record buffers, only the SSL object and its session (issue 16: Asio's ssl::stream
// kept ~70 KiB of buffers per connection for its lifetime).
//
// Lives on one shard; not thread-safe. At most one read and one write may be in flight at a
// time (the relay runs both directions at once), plus nothing else during the handshake or the
// shutdown. Either may find that OpenSSL needs the other direction of the socket (a KeyUpdate
// or renegotiation makes a read write, and a write read): waits are shared per direction, so
// the socket never has two waits of one kind pending — the second waiter is woken with the
// first.
//
// The process must ignore SIGPIPE (main does): OpenSSL writes the descriptor with write(2).
//
// Errors are those Asio's ssl::stream reported, so callers need not know which is in use:
// asio::error::eof after the peer's close_notify, asio::ssl::error::stream_truncated when the
// TCP connection ended without one, the system error of a failed read or write, and OpenSSL's
// error queue (asio::error::get_ssl_category()) for protocol and certificate failures.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <utility>

struct ssl_st;
struct ssl_ctx_st;

namespace exitpool::net {

class tls_stream {
 public:
  using error_code = boost::system::error_code;

  // What an OpenSSL call needs before it can go on.
  enum class want { nothing, read, write };

  // The outcome of one non-blocking step: `n` bytes moved, or an error, or what to wait for.
  struct step {
    error_code ec;
    std::size_t n = 0;
    want wait = want::nothing;
  };

  // Takes the connected socket. `ctx` (SSL_CTX) supplies verification settings and outlives
  // this object. valid() is false when OpenSSL could not allocate the connection.
  tls_stream(boost::asio::ip::tcp::socket sock, ssl_ctx_st* ctx);
  ~tls_stream();
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  bool valid() const { return ssl_ != nullptr; }

  // How many handshakes (handshake(), successful or not) this process has ended so far, on any
  // thread: the gateway trims the heap once a burst of them is over (gateway/heap_trim.hpp).
  static std::uint64_t handshakes();
  ssl_st* native_handle() const { return ssl_; }
  boost::asio::ip::tcp::socket& socket() { return sock_; }

  // Non-blocking steps, for handler-driven callers (net::tls_relay). Each makes one OpenSSL
  // call. try_write may move fewer bytes than asked (partial writes); after it asked to wait,
  // the retry must offer the same bytes again (they may live elsewhere). try_shutdown sends
  // close_notify and does not wait for the peer's.
  step try_handshake();
  step try_read(void* data, std::size_t size);
  step try_write(const void* data, std::size_t size);
  step try_shutdown();

  // Calls `handler(error_code)` once the socket is ready for `w` (read or write), or the wait
  // failed (socket closed: operation_aborted). Cancellable through the handler's cancellation
  // slot (the per-operation timeouts of `||`). A second wait for the same direction while one
  // is pending joins it instead of adding another.
  template <typename Token>
  auto async_ready(want w, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code)>(
        [this, w](auto handler) { start_wait(w, std::move(handler)); }, token);
  }

  // The coroutine operations (a handshake that verifies as configured by the caller on
  // native_handle(); a read returning what OpenSSL has decrypted already before it waits; a
  // write of every byte; close_notify). Not coroutine frames of their own beyond one each.
  boost::asio::awaitable<error_code> handshake();
  boost::asio::awaitable<std::tuple<error_code, std::size_t>> read_some(boost::asio::mutable_buffer b);
  boost::asio::awaitable<std::tuple<error_code, std::size_t>> write_all(boost::asio::const_buffer b);
  boost::asio::awaitable<error_code> shutdown();

 private:
  using follower_handler = boost::asio::any_completion_handler<void(error_code)>;
  struct wait_slot {
    bool busy = false;
    follower_handler follower;  // a second waiter for the same direction
  };

  wait_slot& slot_of(want w) { return w == want::write ? write_wait_ : read_wait_; }

  template <typename Handler>
  void start_wait(want w, Handler handler) {
    wait_slot& slot = slot_of(w);
    if (slot.busy) {
      slot.follower = follower_handler(std::move(handler));
      return;
    }
    slot.busy = true;
    auto cancel = boost::asio::get_associated_cancellation_slot(handler);
    sock_.async_wait(
        w == want::write ? boost::asio::ip::tcp::socket::wait_write : boost::asio::ip::tcp::socket::wait_read,
        boost::asio::bind_cancellation_slot(cancel, [&slot, h = std::move(handler)](error_code ec) mutable {
          slot.busy = false;
          if (slot.follower) {
            auto f = std::move(slot.follower);
            std::move(f)(ec);
          }
          std::move(h)(ec);
        }));
  }

  // A step's error from OpenSSL's answer `ok` to the call just made.
  step outcome(int ok, std::size_t n);

  boost::asio::ip::tcp::socket sock_;
  ssl_st* ssl_ = nullptr;
  wait_slot read_wait_;
  wait_slot write_wait_;
};

}  // namespace exitpool::net
