// The keep-alive pool over real loopback sockets: what comes back out, when, and how many.
#include "gateway/upstream_pool.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace exitpool::gateway {
namespace {

namespace asio = boost::asio;
using net::tcp;
using namespace std::chrono_literals;

proto::exit_spec spec(proto::exit_scheme scheme, std::string id, std::string user = {}, std::string pass = {}) {
  proto::exit_spec s;
  s.scheme = scheme;
  s.host = "10.1.1.1";
  s.port = 3128;
  s.user = std::move(user);
  s.pass = std::move(pass);
  s.id = std::move(id);
  return s;
}

TEST(UpstreamPoolKey, NeverPinsRotation) {
  const pool::exit http_a(spec(proto::exit_scheme::http, "a", "u", "p"), 0);
  const pool::exit http_a_new_pass(spec(proto::exit_scheme::http, "a", "u", "q"), 0);
  const pool::exit http_b(spec(proto::exit_scheme::http, "b", "u", "p"), 1);
  const pool::exit socks(spec(proto::exit_scheme::socks5, "s"), 2);
  const pool::exit direct(spec(proto::exit_scheme::direct, "d"), 3);
  using K = upstream_pool;
  // Another exit, other credentials (a reload), another sticky session: another key.
  EXPECT_NE(K::key(http_a, "x.com:80", ""), K::key(http_b, "x.com:80", ""));
  EXPECT_NE(K::key(http_a, "x.com:80", ""), K::key(http_a_new_pass, "x.com:80", ""));
  EXPECT_NE(K::key(http_a, "x.com:80", "alice\x1fs1"), K::key(http_a, "x.com:80", "alice\x1fs2"));
  EXPECT_NE(K::key(http_a, "x.com:80", "alice\x1fs1"), K::key(http_a, "x.com:80", ""));
  // An HTTP proxy's connection serves any target; a direct or SOCKS one goes to the origin.
  EXPECT_EQ(K::key(http_a, "x.com:80", ""), K::key(http_a, "y.com:80", ""));
  EXPECT_NE(K::key(socks, "x.com:80", ""), K::key(socks, "y.com:80", ""));
  EXPECT_NE(K::key(direct, "x.com:80", ""), K::key(direct, "x.com:81", ""));
  EXPECT_EQ(K::key(direct, "x.com:80", "s"), K::key(direct, "x.com:80", "s"));
  // The exit's password never appears in the key.
  EXPECT_EQ(K::key(http_a, "x.com:80", "").find("p\x1f"), std::string::npos);
}

class UpstreamPool : public ::testing::Test {
 protected:
  UpstreamPool() : acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}

  // A connected stream; its far end stays open in `far` until the test closes it.
  net::stream connect() {
    tcp::socket near(ctx);
    near.connect(acceptor.local_endpoint());
    far.emplace_back(ctx);
    acceptor.accept(far.back());
    return net::stream(std::move(near));
  }
  static int port_of(net::stream& s) { return s.socket().local_endpoint().port(); }

  asio::io_context ctx;
  tcp::acceptor acceptor;
  std::vector<tcp::socket> far;
  const net::clock::time_point t0 = net::clock::now();
};

TEST_F(UpstreamPool, TakeGivesBackWhatWasPutUnderItsKey) {
  upstream_pool p;
  auto s = connect();
  const int port = port_of(s);
  p.put("k", std::move(s), t0);
  EXPECT_EQ(p.size(), 1u);
  EXPECT_FALSE(p.take("other", t0));
  auto back = p.take("k", t0 + 10ms);
  ASSERT_TRUE(back);
  EXPECT_EQ(port_of(*back), port);
  EXPECT_EQ(p.size(), 0u);
  EXPECT_FALSE(p.take("k", t0 + 10ms));
}

TEST_F(UpstreamPool, NewestFirst) {
  upstream_pool p;
  auto a = connect();
  auto b = connect();
  const int port_b = port_of(b);
  p.put("k", std::move(a), t0);
  p.put("k", std::move(b), t0);
  auto got = p.take("k", t0);
  ASSERT_TRUE(got);
  EXPECT_EQ(port_of(*got), port_b);
  EXPECT_EQ(p.size(), 1u);
}

TEST_F(UpstreamPool, ExpiredConnectionsAreNeverHandedOut) {
  upstream_pool p(16, 4, 15s);
  p.put("k", connect(), t0);
  EXPECT_FALSE(p.take("k", t0 + 15s));
  EXPECT_EQ(p.size(), 0u);

  p.put("a", connect(), t0);
  p.put("b", connect(), t0 + 10s);
  EXPECT_EQ(p.sweep(t0 + 14s), 2u);
  EXPECT_EQ(p.sweep(t0 + 15s), 1u);  // a: idle for max_idle, closed
  EXPECT_FALSE(p.take("a", t0 + 15s));
  EXPECT_TRUE(p.take("b", t0 + 15s));
  EXPECT_EQ(p.sweep(t0 + 1h), 0u);
}

TEST_F(UpstreamPool, BoundsPerKeyAndInAll) {
  upstream_pool p(3, 2, 15s);
  p.put("a", connect(), t0);
  p.put("a", connect(), t0);
  p.put("a", connect(), t0);  // over the per-key bound: closed
  EXPECT_EQ(p.size(), 2u);
  p.put("b", connect(), t0);
  p.put("c", connect(), t0);  // over the total bound: closed
  EXPECT_EQ(p.size(), 3u);
  EXPECT_FALSE(p.take("c", t0));
  EXPECT_TRUE(p.take("a", t0));
  EXPECT_TRUE(p.take("a", t0));
  EXPECT_FALSE(p.take("a", t0));
  EXPECT_TRUE(p.take("b", t0));
  p.put("c", connect(), t0);  // room again
  EXPECT_TRUE(p.take("c", t0));
  p.put("d", connect(), t0);
  p.clear();
  EXPECT_EQ(p.size(), 0u);
  EXPECT_FALSE(p.take("d", t0));
}

TEST_F(UpstreamPool, ClosedOrChattyConnectionsAreCheckedAfterASecond) {
  upstream_pool p;
  p.put("closed", connect(), t0);
  far.back().close();  // the server closed it while idle
  p.put("chatty", connect(), t0);
  asio::write(far.back(), asio::buffer(std::string("HTTP/1.1 408 Request Timeout\r\n\r\n")));
  p.put("fine", connect(), t0);
  // Let the FIN and the bytes arrive.
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(p.take("closed", t0 + 2s));
  EXPECT_FALSE(p.take("chatty", t0 + 2s));
  EXPECT_TRUE(p.take("fine", t0 + 2s));
  EXPECT_EQ(p.size(), 0u);
}

TEST_F(UpstreamPool, RecentConnectionsAreTakenAsTheyAre) {
  // Used within the last second: no check (a closed one is caught by the replay).
  upstream_pool p;
  p.put("k", connect(), t0);
  far.back().close();
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(p.take("k", t0 + 500ms));
}

}  // namespace
}  // namespace exitpool::gateway
