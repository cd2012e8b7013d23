// Happy eyeballs over real loopback sockets. A listener whose accept queue is full
// drops new SYNs, so a connection to it hangs as one to an unanswering address would.
#include "net/happy_eyeballs.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

namespace exitpool::net {
namespace {

using namespace std::chrono_literals;

tcp::endpoint ep(const char* addr, std::uint16_t port) {
  return {asio::ip::make_address(addr), port};
}

TEST(happy_eyeballs, order_starts_with_ipv6_and_alternates_families) {
  const std::vector<tcp::endpoint> in{ep("127.0.0.1", 1), ep("127.0.0.2", 1), ep("::1", 1), ep("::2", 1), ep("::3", 1)};
  const std::vector<tcp::endpoint> want{ep("::1", 1), ep("127.0.0.1", 1), ep("::2", 1), ep("127.0.0.2", 1),
                                        ep("::3", 1)};
  EXPECT_EQ(happy_eyeballs_order(in), want);
  const std::vector<tcp::endpoint> v4{ep("127.0.0.1", 1), ep("127.0.0.2", 1)};
  EXPECT_EQ(happy_eyeballs_order(v4), v4);
  EXPECT_TRUE(happy_eyeballs_order({}).empty());
}

// A port on 127.0.0.1 that accepts nothing more: backlog 0, filled by connections
// never accepted.
struct hanging_listener {
  explicit hanging_listener(asio::io_context& ctx) : acceptor(ctx) {
    acceptor.open(tcp::v4());
    acceptor.bind(ep("127.0.0.1", 0));
    acceptor.listen(0);
    for (int i = 0; i < 4; ++i) {
      auto& s = fillers.emplace_back(ctx);
      s.open(tcp::v4());
      s.non_blocking(true);
      // The plain system call: Asio's synchronous connect would wait for the answer.
      const auto to = acceptor.local_endpoint();
      ::connect(s.native_handle(), to.data(), static_cast<socklen_t>(to.size()));  // in progress, or queued
    }
  }
  tcp::endpoint endpoint() const { return acceptor.local_endpoint(); }
  tcp::acceptor acceptor;
  std::vector<tcp::socket> fillers;
};

std::uint16_t closed_port(asio::io_context& ctx) {
  tcp::acceptor a(ctx, ep("127.0.0.1", 0));
  return a.local_endpoint().port();  // closed again when `a` goes
}

struct race_result {
  error_code ec;
  tcp::endpoint peer;
  clock::duration took{};
};

race_result run_race(std::vector<tcp::endpoint> eps, std::chrono::milliseconds delay,
                     std::chrono::milliseconds give_up = 5s) {
  asio::io_context ctx;
  race_result out;
  auto body = [](std::vector<tcp::endpoint> eps, std::chrono::milliseconds delay, std::chrono::milliseconds give_up,
                 race_result& out) -> awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    const auto t0 = clock::now();
    asio::steady_timer deadline(co_await asio::this_coro::executor, give_up);
    auto r = co_await (connect_racing(std::move(eps), std::nullopt, delay) || deadline.async_wait(asio::use_awaitable));
    out.took = clock::now() - t0;
    if (r.index() == 1) {
      out.ec = asio::error::timed_out;
      co_return;
    }
    auto& [ec, sock] = std::get<0>(r);
    out.ec = ec;
    if (!ec) {
      out.peer = sock.remote_endpoint();
    }
  };
  asio::co_spawn(ctx, body(std::move(eps), delay, give_up, out), asio::detached);
  ctx.run();  // returns only once every attempt has ended: none is left behind
  return out;
}

TEST(happy_eyeballs, a_hanging_address_gives_way_after_the_delay) {
  asio::io_context ctx;
  hanging_listener hang(ctx);
  tcp::acceptor good(ctx, ep("127.0.0.1", 0));
  const auto r = run_race({hang.endpoint(), good.local_endpoint()}, 200ms);
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.peer, good.local_endpoint());
  EXPECT_GE(r.took, 190ms);
  EXPECT_LT(r.took, 1500ms);
}

TEST(happy_eyeballs, a_refused_address_gives_way_at_once) {
  asio::io_context ctx;
  tcp::acceptor good(ctx, ep("127.0.0.1", 0));
  const auto r = run_race({ep("127.0.0.1", closed_port(ctx)), good.local_endpoint()}, 2000ms);
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.peer, good.local_endpoint());
  EXPECT_LT(r.took, 1000ms);
}

TEST(happy_eyeballs, every_address_refused_is_the_last_error) {
  asio::io_context ctx;
  const auto r = run_race(
      {ep("127.0.0.1", closed_port(ctx)), ep("127.0.0.1", closed_port(ctx)), ep("127.0.0.1", closed_port(ctx))},
      2000ms);
  EXPECT_EQ(r.ec, asio::error::connection_refused);
  EXPECT_LT(r.took, 1000ms);
}

TEST(happy_eyeballs, the_callers_deadline_stops_every_attempt) {
  asio::io_context ctx;
  hanging_listener a(ctx);
  hanging_listener b(ctx);
  const auto r = run_race({a.endpoint(), b.endpoint()}, 50ms, 300ms);
  EXPECT_EQ(r.ec, asio::error::timed_out);
  EXPECT_LT(r.took, 1000ms);  // and run_race returned: no attempt kept the context busy
}

TEST(happy_eyeballs, open_from_binds_a_freebind_address_the_host_does_not_have) {
  asio::io_context ctx;
  tcp::socket s(ctx);
  const source_address src{asio::ip::make_address("2001:db8:42::7"), true};
  const auto ec = open_from(s, ep("::1", 80), src);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(s.local_endpoint().address(), src.address);
  tcp::socket plain(ctx);
  EXPECT_TRUE(open_from(plain, ep("::1", 80), source_address{src.address, false}));  // EADDRNOTAVAIL
}

}  // namespace
}  // namespace exitpool::net
