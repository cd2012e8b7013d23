#pragma once
// URL fingerprints and a compact set of them: how `fetch` remembers which URLs are
// done (resume) or already seen in this run (duplicates in the input), in 8 bytes
// per URL instead of a set of strings.
//
// Threading: a url_set belongs to one thread (the input reader); no locks.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace exitpool::fetch {

// 64-bit fingerprint of a URL's bytes (FNV-1a, then a murmur3 finaliser to spread
// the bits). Two different URLs collide with probability ~2^-64 per pair: for 10
// million URLs, about 3 in a million runs would wrongly skip one URL.
std::uint64_t fingerprint(std::string_view url);

// Open addressing, linear probing, 64-bit keys (0 is stored as 1: fingerprints are
// not uniform there, harmless). Grows by doubling at 70% load, so it uses 8 to
// ~23 bytes per key (128 MiB for 10 million URLs).
class url_set {
 public:
  explicit url_set(std::size_t expected = 1024);
  // Inserts; returns false when the key was already present.
  bool insert(std::uint64_t key);
  bool contains(std::uint64_t key) const;
  std::size_t size() const { return size_; }
  std::size_t memory_bytes() const { return slots_.size() * sizeof(std::uint64_t); }

 private:
  void grow();
  std::vector<std::uint64_t> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace exitpool::fetch
