#include "fetch/stats.hpp"

#include <gtest/gtest.h>

namespace exitpool::fetch {

TEST(latency_histogram, quantiles_within_bucket_precision) {
  latency_histogram h;
  EXPECT_EQ(h.quantile(0.5), 0u);
  for (std::uint64_t v = 1; v <= 10000; ++v) {
    h.add(v);
  }
  auto near = [](std::uint64_t got, double want) { return got >= want * 0.99 && got <= want * 1.13; };
  EXPECT_TRUE(near(h.quantile(0.5), 5000)) << h.quantile(0.5);
  EXPECT_TRUE(near(h.quantile(0.9), 9000)) << h.quantile(0.9);
  EXPECT_TRUE(near(h.quantile(0.99), 9900)) << h.quantile(0.99);
  latency_histogram other;
  other.add(1000000);
  h.merge(other);
  EXPECT_EQ(h.count(), 10001u);
  EXPECT_GE(h.quantile(1.0), 1000000u);
}

}  // namespace exitpool::fetch
