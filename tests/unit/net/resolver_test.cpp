#include "net/resolver.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace exitpool::net {
namespace {

using udp = asio::ip::udp;
using namespace std::chrono_literals;

// A DNS server on 127.0.0.1 in the test's own io_context: a.test A 10.0.0.1 (TTL 60, no
// AAAA), hang.test never answered, NXDOMAIN for anything else. Counts what it receives.
class tiny_dns {
 public:
  explicit tiny_dns(asio::io_context& io) : sock_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    receive();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(sock_.local_endpoint().port()); }
  int queries(const std::string& name, int type = 1) const {
    auto it = counts_.find({name, type});
    return it == counts_.end() ? 0 : it->second;
  }

 private:
  void receive() {
    sock_.async_receive_from(asio::buffer(buf_), peer_, [this](const error_code& ec, std::size_t n) {
      if (ec) {
        return;
      }
      answer(std::string(buf_.data(), n));
      receive();
    });
  }

  void answer(const std::string& q) {
    // Header (12 bytes), then the question: labels, type, class.
    std::size_t pos = 12;
    std::string name;
    while (pos < q.size() && q[pos] != 0) {
      const auto len = static_cast<unsigned char>(q[pos]);
      name += (name.empty() ? "" : ".") + q.substr(pos + 1, len);
      pos += len + 1;
    }
    const std::size_t question_end = pos + 5;
    if (question_end > q.size()) {
      return;
    }
    const int type = static_cast<unsigned char>(q[pos + 1]) << 8 | static_cast<unsigned char>(q[pos + 2]);
    ++counts_[{name, type}];
    if (name == "hang.test") {
      return;
    }
    const bool known = name == "a.test";
    const bool has_a = known && type == 1;
    std::string r = q.substr(0, 2);
    r += '\x81';
    r += known ? '\x80' : '\x83';  // NOERROR / NXDOMAIN
    r += std::string("\x00\x01\x00", 3) + (has_a ? '\x01' : '\x00') + std::string(4, '\0');
    r += q.substr(12, question_end - 12);
    if (has_a) {
      r += std::string("\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01", 16);
    }
    sock_.send_to(asio::buffer(r), peer_);
  }

  udp::socket sock_;
  udp::endpoint peer_;
  std::array<char, 1500> buf_{};
  std::map<std::pair<std::string, int>, int> counts_;
};

struct fixture {
  asio::io_context io{1};
  tiny_dns server{io};
  dns::config cfg = [this] {
    dns::config c;
    c.servers = {server.address()};
    c.timeout = 600ms;
    return c;
  }();
  resolver res{io.get_executor(), cfg};
};

struct outcome {
  resolve_result r;
  bool done = false;
  clock::duration took{};
};

awaitable<void> lookup(resolver& res, std::string host, outcome& out) {
  const auto t0 = clock::now();
  out.r = co_await res.resolve(std::move(host));
  out.took = clock::now() - t0;
  out.done = true;
}

void spawn(fixture& f, const std::string& host, outcome& out) {
  asio::co_spawn(f.io, lookup(f.res, host, out), asio::detached);
}

void run_until(fixture& f, const std::vector<outcome*>& outs) {
  const auto deadline = clock::now() + 5s;
  auto all_done = [&] { return std::all_of(outs.begin(), outs.end(), [](const outcome* o) { return o->done; }); };
  while (!all_done() && clock::now() < deadline) {
    f.io.run_for(10ms);
  }
  ASSERT_TRUE(all_done()) << "lookups still pending after 5 s";
}

TEST(Resolver, LiteralsAndBadNamesNeedNoQuery) {
  fixture f;
  outcome v4, v6, bad;
  spawn(f, "192.0.2.7", v4);
  spawn(f, "[2001:db8::1]", v6);
  spawn(f, "bad name", bad);
  run_until(f, {&v4, &v6, &bad});
  ASSERT_EQ(v4.r.st, dns::status::ok);
  EXPECT_EQ(v4.r.addresses, std::vector<asio::ip::address>{asio::ip::make_address("192.0.2.7")});
  EXPECT_TRUE(v4.r.cached);
  ASSERT_EQ(v6.r.st, dns::status::ok);
  EXPECT_EQ(v6.r.addresses, std::vector<asio::ip::address>{asio::ip::make_address("2001:db8::1")});
  EXPECT_EQ(bad.r.st, dns::status::bad_name);
}

TEST(Resolver, ConcurrentLookupsShareOneQueryThenTheCacheAnswers) {
  fixture f;
  std::vector<outcome> outs(20);
  std::vector<outcome*> ptrs;
  for (auto& o : outs) {
    spawn(f, "A.test.", o);  // case and the trailing dot do not make another name
    ptrs.push_back(&o);
  }
  run_until(f, ptrs);
  for (const auto& o : outs) {
    ASSERT_EQ(o.r.st, dns::status::ok);
    EXPECT_EQ(o.r.addresses, std::vector<asio::ip::address>{asio::ip::make_address("10.0.0.1")});
    EXPECT_FALSE(o.r.cached);
  }
  EXPECT_EQ(f.server.queries("a.test"), 1);
  EXPECT_EQ(f.server.queries("a.test", 28), 1);  // AAAA
  outcome again;
  spawn(f, "a.test", again);
  run_until(f, {&again});
  EXPECT_TRUE(again.r.cached);
  EXPECT_EQ(f.server.queries("a.test"), 1);
  EXPECT_EQ(f.res.names_in_flight(), 0u);
}

TEST(Resolver, ASlowNameHoldsUpNoOtherAndTimesOutOnItsOwn) {
  fixture f;
  outcome slow, fast;
  spawn(f, "hang.test", slow);
  f.io.run_for(20ms);  // its query is out
  spawn(f, "a.test", fast);
  run_until(f, {&fast});
  EXPECT_EQ(fast.r.st, dns::status::ok);
  EXPECT_LT(fast.took, 200ms);
  EXPECT_FALSE(slow.done);
  run_until(f, {&slow});
  EXPECT_EQ(slow.r.st, dns::status::timeout);
  EXPECT_GE(slow.took, 550ms);
  EXPECT_LT(slow.took, 1500ms);
}

TEST(Resolver, NxdomainCachedBriefly) {
  fixture f;
  outcome first, second;
  spawn(f, "nx.test", first);
  run_until(f, {&first});
  spawn(f, "nx.test", second);
  run_until(f, {&second});
  EXPECT_EQ(first.r.st, dns::status::not_found);
  EXPECT_EQ(second.r.st, dns::status::not_found);
  EXPECT_TRUE(second.r.cached);
  EXPECT_EQ(f.server.queries("nx.test"), 1);
}

TEST(Resolver, EtcHostsFirst) {
  fixture f;
  outcome local;
  spawn(f, "localhost", local);
  run_until(f, {&local});
  ASSERT_EQ(local.r.st, dns::status::ok);
  EXPECT_TRUE(local.r.addresses.front().is_loopback());
  EXPECT_EQ(f.server.queries("localhost"), 0);
  EXPECT_EQ(f.server.queries("localhost", 28), 0);
}

}  // namespace
}  // namespace exitpool::net
