#pragma once
// Shared by the libFuzzer targets in tests/fuzz/: an invariant check that stays on
// in every build type (assert vanishes under NDEBUG), and a small deterministic
// random source seeded from the input, so split points and options are a function
// of the input alone and every crash reproduces from its file.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (false)

namespace exitpool::fuzz {

// FNV-1a of the input, then xorshift64*.
class input_rng {
 public:
  explicit input_rng(std::string_view data) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : data) {
      h = (h ^ c) * 1099511628211ull;
    }
    state_ = h | 1;
  }
  std::uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 2685821657736338717ull;
  }
  // Uniform-ish in [0, n); n > 0.
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace exitpool::fuzz
