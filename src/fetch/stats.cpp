#include "fetch/stats.hpp"

#include <bit>
#include <cmath>

namespace exitpool::fetch {

int latency_histogram::index(std::uint64_t us) {
  if (us < sub) {
    return static_cast<int>(us);
  }
  const int log = 63 - std::countl_zero(us);  // >= 3
  const int shift = log - 3;
  const int frac = static_cast<int>((us >> shift) & (sub - 1));
  return (log - 2) * sub + frac;
}

std::uint64_t latency_histogram::upper(int idx) {
  if (idx < sub) {
    return static_cast<std::uint64_t>(idx);
  }
  const int log = idx / sub + 2;
  const int frac = idx % sub;
  const int shift = log - 3;
  return ((static_cast<std::uint64_t>(sub + frac) + 1) << shift) - 1;
}

void latency_histogram::add(std::uint64_t us) {
  ++counts_[static_cast<std::size_t>(index(us))];
  ++count_;
}

void latency_histogram::merge(const latency_histogram& o) {
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    counts_[i] += o.counts_[i];
  }
  count_ += o.count_;
}

std::uint64_t latency_histogram::quantile(double q) const {
  if (count_ == 0) {
    return 0;
  }
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (int i = 0; i < buckets; ++i) {
    seen += counts_[static_cast<std::size_t>(i)];
    if (seen >= rank && seen > 0) {
      return upper(i);
    }
  }
  return upper(buckets - 1);
}

}  // namespace exitpool::fetch
