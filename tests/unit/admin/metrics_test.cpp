#include "admin/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace exitpool::admin {
namespace {

TEST(ShardMetrics, BlocksDoNotShareCacheLines) {
  static_assert(alignof(shard_metrics) >= 64);
  static_assert(sizeof(shard_metrics) % 64 == 0);
  metrics_registry reg(4);
  ASSERT_EQ(reg.shards.size(), 4u);
  for (const auto& s : reg.shards) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s.get()) % 64, 0u);
  }
}

TEST(ShardMetrics, HooksCountWhereExpected) {
  shard_metrics m;
  m.on_accept(client_protocol::socks5);
  m.on_accept(client_protocol::socks5);
  m.on_request(client_protocol::connect, request_outcome::timeout);
  m.on_http_response(204);
  m.on_http_response(503);
  m.on_http_response(99);   // ignored
  m.on_http_response(600);  // ignored
  m.on_dial("", 0.003);
  m.on_dial("connection_refused", 0.0001);
  m.on_dial("something_new", 20);  // unknown type → proxy_internal_error, latency → +Inf
  m.on_retry();
  m.on_bytes(10, 20);
  m.on_tunnel_open();
  m.on_tunnel_open();
  m.on_tunnel_close();

  EXPECT_EQ(m.accepted[2].get(), 2u);
  EXPECT_EQ(m.accepted[0].get(), 0u);
  EXPECT_EQ(m.requests[1][4].get(), 1u);
  EXPECT_EQ(m.http_responses[1].get(), 1u);
  EXPECT_EQ(m.http_responses[4].get(), 1u);
  EXPECT_EQ(m.http_responses[0].get() + m.http_responses[2].get() + m.http_responses[3].get(), 0u);
  EXPECT_EQ(m.dial_attempts.get(), 3u);
  EXPECT_EQ(m.dial_failures[dial_error_index("connection_refused")].get(), 1u);
  EXPECT_EQ(m.dial_failures[dial_error_index("proxy_internal_error")].get(), 1u);
  EXPECT_EQ(m.retries.get(), 1u);
  EXPECT_EQ(m.bytes_client_to_upstream.get(), 10u);
  EXPECT_EQ(m.bytes_upstream_to_client.get(), 20u);
  EXPECT_EQ(m.active_tunnels.get(), 1);
  // 0.0001 → le=0.001 (bucket 0); 0.003 → le=0.005 (bucket 2); 20 → +Inf.
  EXPECT_EQ(m.dial_latency_hist[0].get(), 1u);
  EXPECT_EQ(m.dial_latency_hist[2].get(), 1u);
  EXPECT_EQ(m.dial_latency_hist.back().get(), 1u);
  EXPECT_EQ(m.dial_latency_count.get(), 3u);
}

TEST(ShardMetrics, BucketBoundsAreInclusive) {
  shard_metrics m;
  m.observe_dial_latency(0.001);  // le="0.001" includes 0.001
  m.observe_dial_latency(10);     // le="10" includes 10
  m.observe_dial_latency(-1);     // clock step: counted as 0
  EXPECT_EQ(m.dial_latency_hist[0].get(), 2u);
  EXPECT_EQ(m.dial_latency_hist[dial_latency_buckets.size() - 1].get(), 1u);
  EXPECT_EQ(m.dial_latency_hist.back().get(), 0u);
}

TEST(DialErrorIndex, KnowsEveryProxyStatusType) {
  for (std::size_t i = 0; i < dial_error_types.size(); ++i) {
    EXPECT_EQ(dial_error_index(dial_error_types[i]), i);
  }
}

TEST(Aggregate, SumsAcrossShards) {
  metrics_registry reg(3);
  reg.shard(0).on_accept(client_protocol::http);
  reg.shard(1).on_accept(client_protocol::http);
  reg.shard(2).on_accept(client_protocol::http);
  reg.shard(1).on_tunnel_open();
  reg.shard(2).on_tunnel_open();
  reg.shard(0).on_bytes(1, 2);
  reg.shard(2).on_bytes(3, 4);
  auto t = aggregate(reg);
  EXPECT_EQ(t.accepted[0], 3u);
  EXPECT_EQ(t.active_tunnels, 2);
  EXPECT_EQ(t.bytes_client_to_upstream, 4u);
  EXPECT_EQ(t.bytes_upstream_to_client, 6u);
}

// One writer per shard, a reader on another thread: no lost updates, no data race
// (run under TSan to check the latter).
TEST(Aggregate, ConcurrentWritersPerShardAndAReader) {
  metrics_registry reg(4);
  constexpr int n = 100000;
  std::vector<std::thread> writers;
  for (int s = 0; s < 4; ++s) {
    writers.emplace_back([&reg, s] {
      for (int i = 0; i < n; ++i) {
        reg.shard(s).on_dial("", 0.01);
      }
    });
  }
  std::uint64_t last = 0;
  for (int i = 0; i < 100; ++i) {
    auto t = aggregate(reg);
    EXPECT_GE(t.dial_attempts, last);
    last = t.dial_attempts;
  }
  for (auto& w : writers) {
    w.join();
  }
  EXPECT_EQ(aggregate(reg).dial_attempts, 4u * n);
}

}  // namespace
}  // namespace exitpool::admin
