#include "fetch/url_set.hpp"

#include <algorithm>
#include <bit>

namespace exitpool::fetch {

std::uint64_t fingerprint(std::string_view url) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : url) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= url.size();
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

namespace {
std::uint64_t normalise(std::uint64_t k) {
  return k == 0 ? 1 : k;
}
}  // namespace

url_set::url_set(std::size_t expected) {
  std::size_t cap = std::bit_ceil(std::max<std::size_t>(16, expected * 10 / 7 + 1));
  slots_.assign(cap, 0);
  mask_ = cap - 1;
}

bool url_set::insert(std::uint64_t key) {
  key = normalise(key);
  if ((size_ + 1) * 10 > slots_.size() * 7) {
    grow();
  }
  for (std::size_t i = key & mask_;; i = (i + 1) & mask_) {
    if (slots_[i] == key) {
      return false;
    }
    if (slots_[i] == 0) {
      slots_[i] = key;
      ++size_;
      return true;
    }
  }
}

bool url_set::contains(std::uint64_t key) const {
  key = normalise(key);
  for (std::size_t i = key & mask_;; i = (i + 1) & mask_) {
    if (slots_[i] == key) {
      return true;
    }
    if (slots_[i] == 0) {
      return false;
    }
  }
}

void url_set::grow() {
  std::vector<std::uint64_t> old;
  old.swap(slots_);
  slots_.assign(old.size() * 2, 0);
  mask_ = slots_.size() - 1;
  for (std::uint64_t k : old) {
    if (k != 0) {
      for (std::size_t i = k & mask_;; i = (i + 1) & mask_) {
        if (slots_[i] == 0) {
          slots_[i] = k;
          break;
        }
      }
    }
  }
}

}  // namespace exitpool::fetch
