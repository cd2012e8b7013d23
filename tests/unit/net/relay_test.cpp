// plain_relay over real loopback sockets: the relay runs on an io_context thread, the
// test drives both far ends with blocking I/O.
#include "net/relay.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <thread>

namespace exitpool::net {
namespace {

// Two connected TCP sockets on 127.0.0.1: `near` on the relay's context, `far` for the test.
struct socket_pair {
  tcp::socket near;
  tcp::socket far;
};

socket_pair connected_pair(asio::io_context& relay_ctx, asio::io_context& test_ctx) {
  tcp::acceptor acceptor(test_ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket far(test_ctx);
  far.connect(acceptor.local_endpoint());
  tcp::socket accepted(relay_ctx);
  acceptor.accept(accepted);
  return {std::move(accepted), std::move(far)};
}

std::string read_exactly(tcp::socket& s, std::size_t n) {
  std::string out(n, '\0');
  asio::read(s, asio::buffer(out));
  return out;
}

bool reads_eof(tcp::socket& s) {
  char c;
  error_code ec;
  s.read_some(asio::buffer(&c, 1), ec);
  return ec == asio::error::eof;
}

class PlainRelay : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = connected_pair(relay_ctx, test_ctx);
    auto b = connected_pair(relay_ctx, test_ctx);
    client_far = std::move(a.far);
    upstream_far = std::move(b.far);
    client = stream(std::move(a.near));
    upstream = stream(std::move(b.near));
  }

  // Starts the relay on its own thread; the returned future is the relay's result.
  std::future<relay_result> start(std::string to_upstream = {}, std::string to_client = {}) {
    relay = std::make_unique<plain_relay>(client, upstream, act);
    auto owner = std::make_shared<int>(0);
    owner_watch = owner;
    auto result = std::make_shared<std::promise<relay_result>>();
    auto fut = result->get_future();
    // As the gateway's session does: `done` closes both streams (the last FIN is the close's).
    relay->start(std::move(to_upstream), std::move(to_client), owner, [this, result](const relay_result& r) {
      client.close();
      upstream.close();
      result->set_value(r);
    });
    runner = std::thread([this] { relay_ctx.run(); });
    return fut;
  }

  void TearDown() override {
    if (runner.joinable()) {
      runner.join();  // returns once the relay has no pending operations left
    }
  }

  asio::io_context relay_ctx;
  asio::io_context test_ctx;
  tcp::socket client_far{test_ctx};
  tcp::socket upstream_far{test_ctx};
  stream client;
  stream upstream;
  activity act;
  std::unique_ptr<plain_relay> relay;
  std::weak_ptr<int> owner_watch;
  std::thread runner;
};

TEST_F(PlainRelay, SmallMessagesBothWaysAndHalfCloseEachWay) {
  auto fut = start();
  asio::write(client_far, asio::buffer(std::string_view("GET / HTTP/1.1\r\n\r\n")));
  EXPECT_EQ(read_exactly(upstream_far, 18), "GET / HTTP/1.1\r\n\r\n");
  asio::write(upstream_far, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\n\r\n")));
  EXPECT_EQ(read_exactly(client_far, 19), "HTTP/1.1 200 OK\r\n\r\n");
  // The client's FIN reaches the upstream; the other direction still carries bytes.
  client_far.shutdown(tcp::socket::shutdown_send);
  EXPECT_TRUE(reads_eof(upstream_far));
  asio::write(upstream_far, asio::buffer(std::string_view("late")));
  EXPECT_EQ(read_exactly(client_far, 4), "late");
  upstream_far.shutdown(tcp::socket::shutdown_send);
  EXPECT_TRUE(reads_eof(client_far));
  auto r = fut.get();
  EXPECT_EQ(r.bytes_up, 18u);
  EXPECT_EQ(r.bytes_down, 23u);
  EXPECT_FALSE(r.error) << r.error.message();
  runner.join();
  EXPECT_TRUE(owner_watch.expired());  // no operation holds the owner once the relay is done
}

TEST_F(PlainRelay, HandshakeLeftoversGoFirst) {
  auto fut = start("pipelined", "early");
  EXPECT_EQ(read_exactly(upstream_far, 9), "pipelined");
  EXPECT_EQ(read_exactly(client_far, 5), "early");
  asio::write(client_far, asio::buffer(std::string_view("next")));
  EXPECT_EQ(read_exactly(upstream_far, 4), "next");
  client_far.shutdown(tcp::socket::shutdown_send);
  upstream_far.shutdown(tcp::socket::shutdown_send);
  auto r = fut.get();
  EXPECT_EQ(r.bytes_up, 13u);
  EXPECT_EQ(r.bytes_down, 5u);
}

TEST_F(PlainRelay, BulkFlowArrivesIntactThroughSplice) {
  auto fut = start();
  // 8 MiB with a position-dependent pattern: any lost, repeated or reordered chunk shows.
  constexpr std::size_t total = 8 << 20;
  std::string data(total, '\0');
  for (std::size_t i = 0; i < total; ++i) {
    data[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
  }
  std::thread writer([&] {
    asio::write(client_far, asio::buffer(data));
    client_far.shutdown(tcp::socket::shutdown_send);
  });
  std::string got = read_exactly(upstream_far, total);
  writer.join();
  EXPECT_TRUE(got == data);
  EXPECT_TRUE(reads_eof(upstream_far));
  upstream_far.shutdown(tcp::socket::shutdown_send);
  auto r = fut.get();
  EXPECT_EQ(r.bytes_up, total);
  EXPECT_FALSE(r.error) << r.error.message();
}

TEST_F(PlainRelay, SlowReaderGetsEverythingWithoutLoss) {
  auto fut = start();
  // The upstream side reads nothing until the writer is done: the relay must hold what the
  // socket does not accept and resume when it drains.
  constexpr std::size_t total = 4 << 20;
  std::string data(total, 'x');
  for (std::size_t i = 0; i < total; i += 997) {
    data[i] = static_cast<char>('a' + i % 26);
  }
  std::thread writer([&] {
    asio::write(client_far, asio::buffer(data));
    client_far.shutdown(tcp::socket::shutdown_send);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::string got = read_exactly(upstream_far, total);
  writer.join();
  EXPECT_TRUE(got == data);
  upstream_far.shutdown(tcp::socket::shutdown_send);
  EXPECT_TRUE(reads_eof(client_far));
  EXPECT_EQ(fut.get().bytes_up, total);
}

TEST_F(PlainRelay, ResetOnOneSideEndsBothWithAnError) {
  auto fut = start();
  asio::write(client_far, asio::buffer(std::string_view("hi")));
  EXPECT_EQ(read_exactly(upstream_far, 2), "hi");
  // An abortive close (RST) of the upstream while the client side is idle.
  upstream_far.set_option(asio::socket_base::linger(true, 0));
  upstream_far.close();
  auto r = fut.get();
  EXPECT_TRUE(r.error);
  // The client is not left waiting for the idle timeout: its side was shut down too.
  EXPECT_TRUE(reads_eof(client_far));
}

}  // namespace
}  // namespace exitpool::net
