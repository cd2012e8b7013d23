#pragma once
// The pool's notion of time: steady_clock instants, always passed in by the caller
// (the pool never reads a clock), so every decision is testable with injected time.

#include <chrono>
#include <cstdint>

namespace exitpool::pool {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

inline std::int64_t to_ns(time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline time_point from_ns(std::int64_t ns) {
  return time_point(std::chrono::duration_cast<clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace exitpool::pool
