#include "net/happy_eyeballs.hpp"

#include <netinet/in.h>

#include <memory>

#include "net/socket.hpp"

namespace exitpool::net {

error_code open_from(tcp::socket& sock, const tcp::endpoint& to, const std::optional<source_address>& source) {
  error_code ec = open_socket(sock, to.protocol());
  if (ec || !source) {
    return ec;
  }
  // Let connect() pick the source port knowing the destination: bind() alone would
  // reserve a port per connection across all destinations (about 28k per source
  // address), IP_BIND_ADDRESS_NO_PORT shares ports between destinations.
  sock.set_option(asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>(true), ec);
  if (!ec && source->freebind) {
    if (source->address.is_v6()) {
      sock.set_option(asio::detail::socket_option::boolean<IPPROTO_IPV6, IPV6_FREEBIND>(true), ec);
    }
    if (ec || source->address.is_v4()) {
      // Kernels before 4.15 know only IP_FREEBIND, which IPv6 sockets honour too.
      ec = {};
      sock.set_option(asio::detail::socket_option::boolean<IPPROTO_IP, IP_FREEBIND>(true), ec);
    }
  }
  if (!ec) {
    sock.bind(tcp::endpoint(source->address, 0), ec);
  }
  return ec;
}

std::vector<tcp::endpoint> happy_eyeballs_order(const std::vector<tcp::endpoint>& eps) {
  std::vector<tcp::endpoint> v6;
  std::vector<tcp::endpoint> v4;
  for (const auto& ep : eps) {
    (ep.address().is_v6() ? v6 : v4).push_back(ep);
  }
  std::vector<tcp::endpoint> out;
  out.reserve(eps.size());
  for (std::size_t i = 0; i < std::max(v6.size(), v4.size()); ++i) {
    if (i < v6.size()) {
      out.push_back(v6[i]);
    }
    if (i < v4.size()) {
      out.push_back(v4[i]);
    }
  }
  return out;
}

namespace {

// The state the racing coroutine and its attempts share (all on one shard's thread).
struct race {
  explicit race(const asio::any_io_executor& ex) : wake(ex) {}
  std::vector<tcp::socket> socks;  // one per attempt started; reserved up front, never reallocated
  asio::steady_timer wake;         // the racer sleeps on it; an attempt that ends cancels it
  std::size_t running = 0;
  std::uint64_t events = 0;  // attempts ended so far: tells their wake-ups from the caller's cancellation
  std::optional<std::size_t> winner;
  error_code last = asio::error::host_unreachable;
};

// One attempt: a free coroutine owning its share of the race (the racer may be gone
// when it ends, having won elsewhere or been cancelled; it closed this socket then).
awaitable<void> race_attempt(std::shared_ptr<race> r, std::size_t i, tcp::endpoint ep) {
  auto ec = co_await connect_socket(r->socks[i], ep);
  --r->running;
  ++r->events;
  if (ec) {
    if (!r->winner) {
      r->last = ec;
    }
  } else if (!r->winner) {
    r->winner = i;
  } else {
    error_code ignored;
    r->socks[i].close(ignored);  // a second success after the first: not needed
  }
  r->wake.cancel();
}

awaitable<std::tuple<error_code, tcp::socket>> connect_one(const tcp::endpoint& ep,
                                                           const std::optional<source_address>& source) {
  tcp::socket sock(co_await asio::this_coro::executor);
  if (auto ec = open_from(sock, ep, source); ec) {
    co_return std::tuple{ec, std::move(sock)};
  }
  auto ec = co_await connect_socket(sock, ep);
  co_return std::tuple{ec, std::move(sock)};
}

}  // namespace

awaitable<std::tuple<error_code, tcp::socket>> connect_racing(std::vector<tcp::endpoint> eps,
                                                              std::optional<source_address> source,
                                                              std::chrono::milliseconds delay) {
  auto ex = co_await asio::this_coro::executor;
  if (eps.size() == 1) {
    co_return co_await connect_one(eps.front(), source);
  }
  auto r = std::make_shared<race>(ex);
  r->socks.reserve(eps.size());
  // Whatever way this coroutine ends (won, failed, cancelled by the dial's deadline), the
  // attempts still connecting are closed, so they end too.
  struct closer {
    race& r;
    ~closer() {
      for (auto& s : r.socks) {
        error_code ignored;
        s.close(ignored);
      }
    }
  } guard{*r};

  std::size_t next = 0;
  // Starts the next address that can be opened; false when none is left.
  auto start_next = [&] {
    while (next < eps.size()) {
      const std::size_t i = next++;
      auto& s = r->socks.emplace_back(ex);
      if (auto ec = open_from(s, eps[i], source); ec) {
        r->last = ec;
        s.close(ec);
        continue;
      }
      ++r->running;
      asio::co_spawn(ex, race_attempt(r, i, eps[i]), asio::detached);
      return true;
    }
    return false;
  };
  start_next();
  auto next_start = clock::now() + delay;
  for (;;) {
    if (r->winner) {
      tcp::socket won = std::move(r->socks[*r->winner]);
      co_return std::tuple{error_code{}, std::move(won)};
    }
    if (r->running == 0) {
      // Every attempt so far failed: the next address now, not after the delay.
      if (!start_next()) {
        co_return std::tuple{r->last, tcp::socket(ex)};
      }
      next_start = clock::now() + delay;
      continue;
    }
    r->wake.expires_at(next < eps.size() ? next_start : clock::time_point::max());
    const auto events = r->events;
    auto [ec] = co_await r->wake.async_wait(nothrow_awaitable);
    if (!ec) {
      if (start_next()) {
        next_start = clock::now() + delay;
      }
    } else if (r->events == events) {
      // Not woken by an attempt: the caller gave up (the dial's deadline).
      co_return std::tuple{error_code(asio::error::operation_aborted), tcp::socket(ex)};
    }
  }
}

}  // namespace exitpool::net
