#include "admin/server.hpp"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <thread>

#include "proto/base64.hpp"

namespace exitpool::admin {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

struct reply {
  int status = 0;
  std::string head;
  std::string body;
};

// A blocking client: sends `raw`, reads to EOF.
reply send_raw(std::uint16_t port, const std::string& raw) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(s, asio::buffer(raw));
  std::string all;
  boost::system::error_code ec;
  asio::read(s, asio::dynamic_buffer(all), ec);
  reply r;
  auto end = all.find("\r\n\r\n");
  if (end == std::string::npos) {
    return r;
  }
  r.head = all.substr(0, end + 2);
  r.body = all.substr(end + 4);
  if (r.head.size() > 12) {
    r.status = std::stoi(r.head.substr(9, 3));
  }
  return r;
}

reply get(std::uint16_t port, const std::string& target, const std::string& extra = "") {
  return send_raw(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n");
}

// An admin server on an ephemeral loopback port, run by its own thread.
class AdminServer : public ::testing::Test {
 protected:
  void start(std::unordered_map<std::string, std::string> users = {}) {
    auto specs = proto::parse_pool_text("http://u:topsecret@10.0.0.1:3128 id=squid country=us\n", "pool.txt");
    snap_ = pool::snapshot::build(std::move(specs));
    ctx_.snapshot = [this] { return snap_; };
    ctx_.metrics = &metrics_;
    ctx_.users = std::move(users);
    ctx_.head_timeout = 300ms;
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port_ = acceptor.local_endpoint().port();
    asio::co_spawn(io_, admin_listener(std::move(acceptor), ctx_), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    io_.stop();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  asio::io_context io_{1};
  std::thread thread_;
  std::shared_ptr<const pool::snapshot> snap_;
  metrics_registry metrics_{2};
  admin_context ctx_;
  std::uint16_t port_ = 0;
};

TEST_F(AdminServer, ServesTheThreeEndpoints) {
  metrics_.shard(1).on_accept(client_protocol::socks5);
  start();
  auto h = get(port_, "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");
  EXPECT_NE(h.head.find("Connection: close"), std::string::npos);

  auto m = get(port_, "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << m.head;
  EXPECT_NE(m.body.find("exitpool_client_connections_total{protocol=\"socks5\"} 1\n"), std::string::npos);
  EXPECT_NE(m.body.find("exitpool_exit_up{exit=\"squid\"} 1\n"), std::string::npos);
  EXPECT_NE(m.head.find("Content-Length: " + std::to_string(m.body.size())), std::string::npos);

  auto e = get(port_, "/exits?pretty=1");
  EXPECT_EQ(e.status, 200);
  EXPECT_NE(e.head.find("Content-Type: application/json"), std::string::npos);
  auto v = boost::json::parse(e.body);
  EXPECT_EQ(v.at("exits").as_array().at(0).at("id").as_string(), "squid");
  EXPECT_EQ(e.body.find("topsecret"), std::string::npos);
}

TEST_F(AdminServer, NotFoundAndMethodNotAllowed) {
  start();
  EXPECT_EQ(get(port_, "/metricsx").status, 404);
  EXPECT_EQ(get(port_, "/dashboard.jsx").status, 404);
  auto p = send_raw(port_, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(p.status, 405);
  EXPECT_NE(p.head.find("Allow: GET"), std::string::npos);
  EXPECT_EQ(send_raw(port_, "garbage\r\n\r\n").status, 400);
}

TEST_F(AdminServer, BasicAuthWhenUsersAreConfigured) {
  start({{"admin", "pw"}});
  auto none = get(port_, "/metrics");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.head.find("WWW-Authenticate: Basic realm="), std::string::npos);
  EXPECT_EQ(get(port_, "/exits").status, 401);
  EXPECT_EQ(get(port_, "/metrics", "Authorization: Basic " + proto::base64_encode("admin:nope") + "\r\n").status, 401);
  EXPECT_EQ(get(port_, "/metrics", "Authorization: Basic " + proto::base64_encode("other:pw") + "\r\n").status, 401);
  EXPECT_EQ(get(port_, "/metrics", "Proxy-Authorization: Basic " + proto::base64_encode("admin:pw") + "\r\n").status,
            401);
  EXPECT_EQ(get(port_, "/metrics", "Authorization: Basic " + proto::base64_encode("admin:pw") + "\r\n").status, 200);
  EXPECT_EQ(get(port_, "/exits", "Authorization: basic " + proto::base64_encode("admin:pw") + "\r\n").status, 200);
  EXPECT_EQ(get(port_, "/healthz").status, 200);  // probes need no secret
  // The dashboard and its data follow the same rule as /metrics.
  for (const char* path : {"/", "/dashboard.js", "/dashboard.css", "/dashboard.json"}) {
    EXPECT_EQ(get(port_, path).status, 401) << path;
    EXPECT_EQ(get(port_, path, "Authorization: Basic " + proto::base64_encode("admin:pw") + "\r\n").status, 200)
        << path;
  }
}

TEST_F(AdminServer, ServesTheDashboardAndItsData) {
  start();
  auto page = get(port_, "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.head.find("Content-Type: text/html"), std::string::npos);
  EXPECT_NE(page.head.find("Content-Security-Policy: default-src 'none'"), std::string::npos);
  EXPECT_NE(page.body.find("<script src=\"dashboard.js\">"), std::string::npos);
  EXPECT_NE(page.body.find("</html>"), std::string::npos) << "the whole file is embedded";
  auto js = get(port_, "/dashboard.js");
  EXPECT_NE(js.head.find("Content-Type: text/javascript"), std::string::npos);
  EXPECT_NE(js.body.find("dashboard.json"), std::string::npos);
  EXPECT_NE(get(port_, "/dashboard.css").head.find("Content-Type: text/css"), std::string::npos);
  auto data = get(port_, "/dashboard.json?state=healthy");
  EXPECT_EQ(data.status, 200);
  EXPECT_NE(data.head.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(data.head.find("Cache-Control: no-store"), std::string::npos);
  EXPECT_NE(data.body.find("\"state\":\"healthy\""), std::string::npos);
  EXPECT_EQ(data.body.find("topsecret"), std::string::npos);
}

TEST_F(AdminServer, SlowAndOversizedHeadsAreCutOff) {
  start();
  auto t0 = std::chrono::steady_clock::now();
  auto slow = send_raw(port_, "GET /metrics HTTP/1.1\r\nHost: x\r\n");  // never finishes the head
  EXPECT_EQ(slow.status, 408);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  auto big = send_raw(port_, "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_TRUE(big.status == 431 || big.status == 400) << big.status;
  // Still serving afterwards.
  EXPECT_EQ(get(port_, "/healthz").status, 200);
}

TEST(HandleAdminRequest, NullSnapshotAndNoMetrics) {
  admin_context ctx;
  auto r = handle_admin_request("GET", "/metrics", nullptr, ctx, pool::clock::now());
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("exitpool_exits{state=\"healthy\"} 0"), std::string::npos);
  auto j = handle_admin_request("GET", "/exits", nullptr, ctx, pool::clock::now());
  EXPECT_EQ(j.status, 200);
  EXPECT_EQ(j.body, "{\"exits\":[],\"sources\":[]}\n");
}

}  // namespace
}  // namespace exitpool::admin
