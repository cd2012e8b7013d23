#pragma once
// The local frontier's per-host queues with a bounded memory part (`crawl`, one process):
// a crawl that discovers millions of URLs would otherwise hold every queued URL's string
// (~100 bytes each) in memory. Each host keeps at most `memory_items` queued URLs in
// memory; the rest goes, in blocks of `block_items`, to one spill file shared by every
// host (OUTPUT.spill, next to the output), and comes back in order, a block at a time, when
// the memory part drains. What stays in memory per spilled block is its place in the file
// (24 bytes for up to block_items URLs).
//
// The spill file is a cache, not a checkpoint: a resume rebuilds the frontier from the
// output (crawl/run.cpp), so a new run starts the file afresh. Its format is text, one URL
// a line ("DEPTH HOPS LEASE URL"; normalised URLs hold no spaces or controls), so a bad or
// cut file is reported as FILE:LINE. Blocks read back are punched out of the file
// (release), so its disk use follows what is still queued; a file reopened without
// truncation counts its lines again, and holes hold none.
//
// Threads: one (the crawl's coordinator), like the frontier. Errors reading or writing the
// file throw std::runtime_error naming FILE (and LINE): the disk under the output failed,
// and the crawl stops (its output is the checkpoint: run it again).

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace exitpool::crawl {

// A URL waiting in a host's queue (the host's key and name are the queue's).
struct queued_url {
  std::string url;
  std::uint64_t lease = 0;  // a shared frontier's lease (0: none)
  std::uint32_t depth = 0;
  std::uint8_t hops = 0;
};

// A FIFO that holds no heap while empty: a std::deque keeps a ~500-byte block and its map
// even then, which a crawl reaching a million hosts would pay a million times over (twice
// per host queue). Pops move a head index; the consumed front is dropped once it is half
// the storage, and all of it when the queue drains.
template <typename T>
class lean_fifo {
 public:
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  T& front() { return items_[head_]; }
  void push_back(T v) { items_.push_back(std::move(v)); }
  void pop_front() {
    ++head_;
    if (head_ == items_.size()) {
      std::vector<T>().swap(items_);
      head_ = 0;
    } else if (head_ >= 32 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;
};

class spill_file {
 public:
  // Where a block of URLs lies in the file.
  struct block {
    std::uint64_t offset = 0;
    std::uint64_t line = 0;  // the block's first line (1-based), for errors
    std::uint32_t bytes = 0;
    std::uint32_t count = 0;
  };

  // Opens `path` for reading and appending, creating it; `truncate`: start empty, else
  // append after what is there (its lines are counted, for line numbers).
  explicit spill_file(std::string path, bool truncate = true);
  ~spill_file();
  spill_file(const spill_file&) = delete;
  spill_file& operator=(const spill_file&) = delete;

  // Appends the URLs as one block.
  block append(const std::vector<queued_url>& urls);
  // Reads a block back, appending its URLs to `out` in the order written. Throws
  // "FILE:LINE: why" for a short file or a line that is not "DEPTH HOPS LEASE URL".
  void read(const block& b, std::vector<queued_url>& out) const;
  // A block read back for good: its bytes are given back to the file system (a hole is
  // punched: fallocate PUNCH_HOLE), so the disk a long crawl's spill file holds stays about
  // what is still queued in it, not everything ever spilled. Offsets of the other blocks
  // do not move. Where the file system cannot punch holes, the bytes stay until the end.
  void release(const block& b);

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return end_; }         // apparent size: every byte ever appended
  std::uint64_t live_bytes() const { return live_; }  // of blocks not released

  static std::string encode(const queued_url& u);
  // nullopt-like: false when `line` is not a spill line.
  static bool decode(std::string_view line, queued_url& out);

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t end_ = 0, lines_ = 0, live_ = 0;
  std::uint64_t page_ = 4096;                        // the file system's block size
  std::map<std::uint64_t, std::uint64_t> released_;  // byte ranges given back, merged: first -> end
};

// One host's FIFO queue: memory first, then spilled blocks, then the block being filled.
class spill_queue {
 public:
  struct limits {
    std::size_t memory_items = 0;  // 0: never spill (everything in memory)
    std::size_t block_items = 256;
  };

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  std::size_t spilled() const { return spilled_; }  // URLs in the file now

  // `file` may be null when limits.memory_items is 0.
  void push(queued_url u, spill_file* file, const limits& l);
  // The oldest URL; the queue must not be empty. Reads a block back when memory is empty.
  queued_url pop(spill_file* file);

 private:
  lean_fifo<queued_url> memory_;
  lean_fifo<spill_file::block> blocks_;
  std::vector<queued_url> tail_;  // newer than every block: written when block_items long
  std::size_t size_ = 0, spilled_ = 0;
};

}  // namespace exitpool::crawl
