#pragma once
// An upstream byte stream: a plain TCP socket, or TLS over one (https:// exits).
// Lives on one shard; not thread-safe.

#include <boost/asio.hpp>
#include <memory>
#include <tuple>

#include "net/tls_stream.hpp"

namespace exitpool::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
template <typename T>
using awaitable = asio::awaitable<T>;
using clock = std::chrono::steady_clock;

// Completion token for the data plane: no exceptions, (error_code, ...) tuples.
inline constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

// Last time bytes moved; the session's watchdog reads it for the idle timeout.
struct activity {
  clock::time_point last = clock::now();
  void touch() { last = clock::now(); }
};

class stream {
 public:
  stream() = default;
  explicit stream(tcp::socket s) : plain_(std::make_unique<tcp::socket>(std::move(s))) {}
  explicit stream(std::unique_ptr<tls_stream> s) : tls_(std::move(s)) {}

  bool valid() const { return plain_ || tls_; }
  bool is_plain() const { return plain_ != nullptr; }
  tcp::socket& socket() { return plain_ ? *plain_ : tls_->socket(); }
  tls_stream* tls() { return tls_.get(); }  // null for plain TCP

  // Not coroutines themselves: they hand back the operation's own awaitable, so a read
  // or write costs one coroutine frame, not two.
  awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    if (plain_) {
      return plain_->async_read_some(b, nothrow_awaitable);
    }
    return tls_->read_some(b);
  }

  awaitable<std::tuple<error_code, std::size_t>> write_all(asio::const_buffer b) {
    if (plain_) {
      return asio::async_write(*plain_, b, nothrow_awaitable);
    }
    return tls_->write_all(b);
  }

  void close() {
    error_code ec;
    if (valid()) {
      socket().close(ec);
    }
  }

 private:
  std::unique_ptr<tcp::socket> plain_;
  std::unique_ptr<tls_stream> tls_;
};

}  // namespace exitpool::net
