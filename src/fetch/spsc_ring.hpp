#pragma once
// A bounded single-producer single-consumer ring: the input reader hands URLs to a
// shard through one of these. Full means the shard is behind: the reader waits
// (backpressure), so memory stays bounded however long the input is.
//
// Threading: exactly one thread calls try_push, exactly one calls try_pop.

#include <atomic>
#include <bit>
#include <cstddef>
#include <optional>
#include <vector>

namespace exitpool::fetch {

template <class T>
class spsc_ring {
 public:
  explicit spsc_ring(std::size_t capacity) : slots_(std::bit_ceil(capacity < 2 ? 2 : capacity)) {
    mask_ = slots_.size() - 1;
  }

  bool try_push(T&& v) {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_.load(std::memory_order_acquire) == slots_.size()) {
      return false;
    }
    slots_[tail & mask_] = std::move(v);
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  std::optional<T> try_pop() {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_.load(std::memory_order_acquire)) {
      return std::nullopt;
    }
    std::optional<T> out(std::move(slots_[head & mask_]));
    head_.store(head + 1, std::memory_order_release);
    return out;
  }

  bool empty() const { return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire); }

 private:
  std::vector<T> slots_;
  std::size_t mask_;
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
};

}  // namespace exitpool::fetch
