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
  m.on_dial(pool::failure::none, 0.003);
  m.on_dial(pool::failure::connection_refused, 0.0001);
  m.on_dial(pool::failure::proxy_auth_failed, 20);  // no label of its own → proxy_internal_error; latency → +Inf
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
  EXPECT_EQ(m.dial_failures[dial_error_index(pool::failure::connection_refused)].get(), 1u);
  EXPECT_EQ(m.dial_failures[dial_error_index(pool::failure::proxy_auth_failed)].get(), 1u);
  EXPECT_EQ(m.retries.get(), 1u);
  EXPECT_EQ(m.bytes_client_to_upstream.get(), 10u);
  EXPECT_EQ(m.bytes_upstream_to_client.get(), 20u);
  EXPECT_EQ(m.active_tunnels.get(), 1);
  // 0.0001 → le=0.001 (bucket 0); 0.003 → le=0.005 (bucket 2); 20 → +Inf.
  EXPECT_EQ(m.dial_latency.buckets[0].get(), 1u);
  EXPECT_EQ(m.dial_latency.buckets[2].get(), 1u);
  EXPECT_EQ(m.dial_latency.buckets.back().get(), 1u);
  EXPECT_EQ(m.dial_latency.count.get(), 3u);
}

TEST(ShardMetrics, BucketBoundsAreInclusive) {
  shard_metrics m;
  m.dial_latency.observe(0.001);  // le="0.001" includes 0.001
  m.dial_latency.observe(10);     // le="10" includes 10
  m.dial_latency.observe(-1);     // clock step: counted as 0
  EXPECT_EQ(m.dial_latency.buckets[0].get(), 2u);
  EXPECT_EQ(m.dial_latency.buckets[latency_buckets.size() - 1].get(), 1u);
  EXPECT_EQ(m.dial_latency.buckets.back().get(), 0u);
}

TEST(DialErrorIndex, EveryDialFailureHasItsProxyStatusLabel) {
  for (std::size_t k = 0; k < pool::failure_count; ++k) {
    const auto f = static_cast<pool::failure>(k);
    if (!pool::is_dial_failure(f) && f != pool::failure::target_prohibited) {
      continue;
    }
    EXPECT_EQ(dial_error_types[dial_error_index(f)], pool::proxy_status_name(f)) << pool::failure_name(f);
  }
  // An access-policy refusal after resolution has its own label (it was proxy_internal_error).
  EXPECT_EQ(dial_error_types[dial_error_index(pool::failure::target_prohibited)], "destination_ip_prohibited");
}

TEST(RequestOutcome, EachFailureCountsWhereItBelongs) {
  using pool::failure;
  EXPECT_EQ(outcome_of(failure::none), request_outcome::ok);
  EXPECT_EQ(outcome_of(failure::no_match), request_outcome::no_exit);
  EXPECT_EQ(outcome_of(failure::no_capacity), request_outcome::no_capacity);
  EXPECT_EQ(outcome_of(failure::queue_full), request_outcome::no_capacity);
  EXPECT_EQ(outcome_of(failure::target_prohibited), request_outcome::refused);
  EXPECT_EQ(outcome_of(failure::connection_timeout), request_outcome::timeout);
  EXPECT_EQ(outcome_of(failure::response_timeout), request_outcome::timeout);
  EXPECT_EQ(outcome_of(failure::connection_refused), request_outcome::dial_failed);
  EXPECT_EQ(outcome_of(failure::exhausted), request_outcome::dial_failed);
  EXPECT_EQ(outcome_of(failure::auth_failed), request_outcome::client_error);
  EXPECT_EQ(outcome_of(failure::bad_request), request_outcome::client_error);
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
        reg.shard(s).on_dial(pool::failure::none, 0.01);
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
