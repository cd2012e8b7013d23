#pragma once
// Latency histogram for the end-of-run summary: log2 buckets with 8 linear
// sub-buckets each (values within ~12% of the truth), fixed size, mergeable.
// Not thread-safe: one per shard, merged after the shards have stopped.

#include <array>
#include <cstdint>

namespace exitpool::fetch {

class latency_histogram {
 public:
  void add(std::uint64_t us);
  void merge(const latency_histogram& o);
  std::uint64_t count() const { return count_; }
  // Value (µs) at quantile q in [0, 1]: the upper edge of its bucket; 0 when empty.
  std::uint64_t quantile(double q) const;

 private:
  static constexpr int sub = 8;
  static constexpr int buckets = 64 * sub;
  static int index(std::uint64_t us);
  static std::uint64_t upper(int idx);
  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t count_ = 0;
};

}  // namespace exitpool::fetch
