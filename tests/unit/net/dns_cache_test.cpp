#include "net/dns_cache.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace exitpool::net::dns {
namespace {

using namespace std::chrono_literals;

const time_point t0{};

address v4(std::uint8_t last) {
  address a;
  a.bytes = {10, 0, 0, last};
  return a;
}

address v6(std::uint8_t last) {
  address a;
  a.v6 = true;
  a.bytes[0] = 0x20;
  a.bytes[1] = 0x01;
  a.bytes[15] = last;
  return a;
}

answer ok(std::vector<address> addrs, std::chrono::seconds ttl) {
  return {status::ok, std::move(addrs), ttl};
}

answer failed(status s) {
  return {s, {}, 0s};
}

TEST(DnsMerge, AddressesOfEitherFamilyWinIPv4First) {
  const auto both = merge(ok({v4(1)}, 30s), ok({v6(1), v6(2)}, 20s));
  EXPECT_EQ(both.st, status::ok);
  EXPECT_EQ(both.addresses, (std::vector<address>{v4(1), v6(1), v6(2)}));
  EXPECT_EQ(both.ttl, 20s);  // the smaller of the two

  const auto only4 = merge(ok({v4(1)}, 30s), failed(status::no_address));
  EXPECT_EQ(only4.st, status::ok);
  EXPECT_EQ(only4.ttl, 30s);
  // A server failing one family does not hide the other's addresses.
  EXPECT_EQ(merge(failed(status::server_failure), ok({v6(7)}, 5s)).addresses, std::vector<address>{v6(7)});
}

TEST(DnsMerge, FailureThatSaysMostAboutTheName) {
  struct row {
    status a, b, want;
  };
  const row rows[] = {
      {status::not_found, status::not_found, status::not_found},
      {status::not_found, status::timeout, status::not_found},  // NXDOMAIN is for every type
      {status::no_address, status::no_address, status::no_address},
      {status::no_address, status::timeout, status::timeout},
      {status::server_failure, status::no_address, status::server_failure},
      {status::timeout, status::server_failure, status::timeout},
      {status::unreachable, status::unreachable, status::unreachable},
      {status::ok, status::no_address, status::no_address},  // ok without addresses is NODATA
  };
  for (const auto& r : rows) {
    EXPECT_EQ(merge(failed(r.a), failed(r.b)).st, r.want) << status_name(r.a) << " + " << status_name(r.b);
    EXPECT_EQ(merge(failed(r.b), failed(r.a)).st, r.want) << status_name(r.b) << " + " << status_name(r.a);
  }
}

TEST(DnsTtl, ClampedAndNegativeBrief) {
  ttl_policy p{.min_ttl = 10s, .max_ttl = 300s, .negative_ttl = 5s};
  EXPECT_EQ(p.lifetime(ok({v4(1)}, 0s)), 10s);
  EXPECT_EQ(p.lifetime(ok({v4(1)}, 60s)), 60s);
  EXPECT_EQ(p.lifetime(ok({v4(1)}, 86400s)), 300s);
  EXPECT_EQ(p.lifetime(failed(status::not_found)), 5s);
  EXPECT_EQ(p.lifetime(failed(status::no_address)), 5s);
  EXPECT_EQ(p.lifetime(failed(status::server_failure)), 5s);
  EXPECT_EQ(p.lifetime(failed(status::unreachable)), 5s);  // every server SERVFAILed (or none listens)
  // Never kept: they say nothing about the name, or the next try may well work.
  for (auto s : {status::timeout, status::bad_name, status::internal}) {
    EXPECT_EQ(p.lifetime(failed(s)), clock::duration::zero()) << status_name(s);
  }
  p.max_ttl = 2s;  // the negative TTL stays under the cap
  EXPECT_EQ(p.lifetime(failed(status::not_found)), 2s);
  p.min_ttl = 0s;
  EXPECT_EQ(p.lifetime(ok({v4(1)}, 0s)), 0s);
}

TEST(DnsCache, FreshUntilItsTtlThenGone) {
  cache c(10, {.min_ttl = 0s, .max_ttl = 100s, .negative_ttl = 3s});
  c.store("a.test", ok({v4(1)}, 30s), t0);
  c.store("nx.test", failed(status::not_found), t0);
  ASSERT_NE(c.find("a.test", t0 + 29s), nullptr);
  EXPECT_EQ(c.find("a.test", t0 + 29s)->addresses, std::vector<address>{v4(1)});
  EXPECT_EQ(c.find("a.test", t0 + 30s), nullptr);
  EXPECT_EQ(c.size(), 1u);  // the expired one was dropped when looked up
  ASSERT_NE(c.find("nx.test", t0 + 2s), nullptr);
  EXPECT_EQ(c.find("nx.test", t0 + 2s)->st, status::not_found);
  EXPECT_EQ(c.find("nx.test", t0 + 3s), nullptr);
  // A timeout is not kept, and replaces nothing it could be confused with.
  c.store("slow.test", failed(status::timeout), t0);
  EXPECT_EQ(c.find("slow.test", t0), nullptr);
  c.store("b.test", ok({v4(2)}, 30s), t0);
  c.store("b.test", failed(status::timeout), t0 + 1s);
  EXPECT_EQ(c.find("b.test", t0 + 1s), nullptr);
}

TEST(DnsCache, LeastRecentlyUsedEvictedAtTheCap) {
  cache c(3, {.min_ttl = 60s});
  c.store("a", ok({v4(1)}, 60s), t0);
  c.store("b", ok({v4(2)}, 60s), t0);
  c.store("c", ok({v4(3)}, 60s), t0);
  ASSERT_NE(c.find("a", t0), nullptr);  // a is now the most recent: b is the oldest
  c.store("d", ok({v4(4)}, 60s), t0);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.find("b", t0), nullptr);
  EXPECT_NE(c.find("a", t0), nullptr);
  EXPECT_NE(c.find("c", t0), nullptr);
  EXPECT_NE(c.find("d", t0), nullptr);
  // Replacing an entry refreshes it and does not grow the cache.
  c.store("c", ok({v4(9)}, 60s), t0 + 1s);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.find("c", t0 + 1s)->addresses, std::vector<address>{v4(9)});
}

TEST(DnsLookupTable, ConcurrentLookupsShareOneQuery) {
  lookup_table t(100, {.min_ttl = 0s, .max_ttl = 60s});
  std::vector<std::string> woken;
  auto waiter = [&woken](std::string who) {
    return [&woken, who](const answer& a) { woken.push_back(who + ":" + std::string(status_name(a.st))); };
  };
  EXPECT_EQ(t.begin("a.test", waiter("1"), t0).how, source::query);
  EXPECT_EQ(t.begin("a.test", waiter("2"), t0).how, source::coalesced);
  EXPECT_EQ(t.begin("b.test", waiter("3"), t0).how, source::query);
  EXPECT_EQ(t.names_in_flight(), 2u);
  // Nobody wakes until both families are in.
  EXPECT_EQ(t.on_family("a.test", false, ok({v4(1)}, 10s), t0 + 1s), 0u);
  EXPECT_TRUE(woken.empty());
  EXPECT_EQ(t.on_family("a.test", true, failed(status::no_address), t0 + 1s), 2u);
  EXPECT_EQ(woken, (std::vector<std::string>{"1:ok", "2:ok"}));
  EXPECT_FALSE(t.in_flight("a.test"));
  // Cached from then on, for its TTL.
  auto hit = t.begin("a.test", waiter("4"), t0 + 10s);
  EXPECT_EQ(hit.how, source::cache);
  EXPECT_EQ(hit.cached.addresses, std::vector<address>{v4(1)});
  EXPECT_EQ(t.begin("a.test", waiter("5"), t0 + 11s).how, source::query);  // expired: a new query
  EXPECT_EQ(woken.size(), 2u);                                             // a hit never calls its waiter
  // A late answer for a name nobody asked about is dropped.
  EXPECT_EQ(t.on_family("zzz.test", false, ok({v4(1)}, 10s), t0), 0u);
}

TEST(DnsLookupTable, NegativeAnswersCachedBriefly) {
  lookup_table t(100, {.min_ttl = 0s, .max_ttl = 60s, .negative_ttl = 2s});
  int calls = 0;
  auto count = [&calls](const answer&) { ++calls; };
  ASSERT_EQ(t.begin("nx.test", count, t0).how, source::query);
  t.on_family("nx.test", false, failed(status::not_found), t0);
  t.on_family("nx.test", true, failed(status::not_found), t0);
  EXPECT_EQ(calls, 1);
  auto again = t.begin("nx.test", count, t0 + 1s);
  EXPECT_EQ(again.how, source::cache);
  EXPECT_EQ(again.cached.st, status::not_found);
  EXPECT_EQ(t.begin("nx.test", count, t0 + 2s).how, source::query);
  // Timeouts are not cached: the next lookup asks again.
  ASSERT_EQ(t.begin("slow.test", count, t0).how, source::query);
  t.on_family("slow.test", false, failed(status::timeout), t0);
  t.on_family("slow.test", true, failed(status::timeout), t0);
  EXPECT_EQ(t.begin("slow.test", count, t0).how, source::query);
}

TEST(DnsLookupTable, AWaiterMayLookUpAgainWhenWoken) {
  lookup_table t(100, {.min_ttl = 0s, .max_ttl = 60s});
  source second = source::query;
  t.begin(
      "a.test",
      [&](const answer&) {
        second = t.begin(
                      "a.test", [](const answer&) {}, t0)
                     .how;
      },
      t0);
  t.on_family("a.test", false, ok({v4(1)}, 5s), t0);
  t.on_family("a.test", true, ok({v6(1)}, 5s), t0);
  EXPECT_EQ(second, source::cache);
}

TEST(DnsName, NormalisedOrRefused) {
  EXPECT_EQ(normalize_name("Example.COM."), "example.com");
  EXPECT_EQ(normalize_name("_srv.a-b.test"), "_srv.a-b.test");
  EXPECT_EQ(normalize_name("localhost"), "localhost");
  for (std::string_view bad : {"", ".", "a..b", ".a", "a b", "a\nb", "caf\xc3\xa9.test", "a/b"}) {
    EXPECT_FALSE(normalize_name(bad)) << bad;
  }
  EXPECT_TRUE(normalize_name(std::string(63, 'a') + ".test"));
  EXPECT_FALSE(normalize_name(std::string(64, 'a') + ".test"));
  std::string long_name;
  while (long_name.size() < 254) {
    long_name += "abcdefghi.";
  }
  EXPECT_FALSE(normalize_name(long_name.substr(0, 254)));
}

TEST(DnsServers, CsvForCares) {
  std::string err;
  EXPECT_EQ(server_csv({"127.0.0.1"}, err), "127.0.0.1");
  EXPECT_EQ(server_csv({"127.0.0.1:5353,[::1]:53", "::1", "10.0.0.1"}, err), "127.0.0.1:5353,[::1]:53,[::1],10.0.0.1");
  EXPECT_EQ(server_csv({}, err), "");
  for (const std::string bad :
       {"dns.example", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:x", "[::1", "[1.2.3.4]:53", "1.2.3.4,", "::g"}) {
    err.clear();
    EXPECT_FALSE(server_csv({bad}, err)) << bad;
    EXPECT_NE(err.find('\''), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace exitpool::net::dns
