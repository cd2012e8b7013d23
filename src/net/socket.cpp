#include "net/socket.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace exitpool::net {

namespace {

using socket_base_type = asio::basic_socket<tcp, asio::any_io_executor>;

// Asio keeps a socket's state bits in its implementation, which basic_socket holds as a
// protected member. A pointer to that member, formed through a derived class, reaches it
// without any cast of the object.
struct impl_access : socket_base_type {
  using socket_base_type::impl_;
};

auto& state_bits(tcp::socket& sock) {
  socket_base_type& base = sock;
  return (base.*(&impl_access::impl_)).get_implementation().state_;
}

}  // namespace

error_code errno_code() {
  return {errno, boost::system::system_category()};
}

error_code adopt_socket(tcp::socket& sock, const tcp& protocol, int fd) {
  error_code ec;
  sock.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return ec;
  }
  // Born non-blocking (no ioctl on the first operation) and not a duplicate: closing it
  // removes it from epoll, no EPOLL_CTL_DEL needed first.
  auto& state = state_bits(sock);
  state |= asio::detail::socket_ops::internal_non_blocking;
  state &= static_cast<asio::detail::socket_ops::state_type>(~asio::detail::socket_ops::possible_dup);
  return {};
}

error_code open_socket(tcp::socket& sock, const tcp& protocol) {
  const int fd = ::socket(protocol.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) {
    return errno_code();
  }
  return adopt_socket(sock, protocol, fd);
}

awaitable<error_code> connect_socket(tcp::socket& sock, const tcp::endpoint& to) {
  if (::connect(sock.native_handle(), to.data(), static_cast<socklen_t>(to.size())) == 0) {
    co_return error_code{};
  }
  if (errno != EINPROGRESS && errno != EINTR) {
    co_return errno_code();
  }
  // Asio adds EPOLLOUT to the registration when this wait starts; epoll reports a socket
  // that connected in the meantime at once.
  auto [ec] = co_await sock.async_wait(tcp::socket::wait_write, nothrow_awaitable);
  if (ec) {
    co_return ec;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(sock.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    co_return errno_code();
  }
  co_return error_code{err, boost::system::system_category()};
}

awaitable<std::tuple<error_code, tcp::socket>> accept_socket(tcp::acceptor& acceptor, const tcp& protocol) {
  for (;;) {
    const int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      tcp::socket sock(acceptor.get_executor());
      auto ec = adopt_socket(sock, protocol, fd);
      co_return std::tuple{ec, std::move(sock)};
    }
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      // Nothing pending. The wait is queued before this thread polls epoll again, so a
      // connection arriving in between is still reported (edge-triggered registration).
      auto [ec] = co_await acceptor.async_wait(tcp::acceptor::wait_read, nothrow_awaitable);
      if (ec) {
        co_return std::tuple{ec, tcp::socket(acceptor.get_executor())};
      }
      continue;
    }
    if (err == ECONNABORTED || err == EINTR || err == EPROTO) {
      continue;  // the peer gave up before we took it, or a signal: try the next one
    }
    co_return std::tuple{error_code{err, boost::system::system_category()}, tcp::socket(acceptor.get_executor())};
  }
}

}  // namespace exitpool::net
