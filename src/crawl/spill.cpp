#include "crawl/spill.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace exitpool::crawl {

namespace {

[[noreturn]] void fail(const std::string& path, std::string_view what) {
  throw std::runtime_error(fmt::format("spill file {}: {}: {}", path, what, std::strerror(errno)));
}

template <typename T>
bool field(std::string_view& s, T& out) {
  const auto sp = s.find(' ');
  if (sp == std::string_view::npos) {
    return false;
  }
  const auto [p, ec] = std::from_chars(s.data(), s.data() + sp, out);
  if (ec != std::errc() || p != s.data() + sp) {
    return false;
  }
  s.remove_prefix(sp + 1);
  return true;
}

}  // namespace

spill_file::spill_file(std::string path, bool truncate) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
  if (fd_ < 0) {
    fail(path_, "cannot open it");
  }
  const off_t end = ::lseek(fd_, 0, SEEK_END);
  if (end < 0) {
    fail(path_, "cannot seek");
  }
  end_ = static_cast<std::uint64_t>(end);
  live_ = end_;
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && st.st_blksize > 0) {
    page_ = static_cast<std::uint64_t>(st.st_blksize);
  }
  // Count what is there, for the line numbers of what comes next.
  char buf[1 << 16];
  for (std::uint64_t at = 0; at < end_;) {
    const ssize_t n = ::pread(fd_, buf, sizeof buf, static_cast<off_t>(at));
    if (n <= 0) {
      fail(path_, "cannot read it");
    }
    for (ssize_t i = 0; i < n; ++i) {
      lines_ += buf[i] == '\n' ? 1 : 0;
    }
    at += static_cast<std::uint64_t>(n);
  }
}

spill_file::~spill_file() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::string spill_file::encode(const queued_url& u) {
  return fmt::format("{} {} {} {}\n", u.depth, u.hops, u.lease, u.url);
}

bool spill_file::decode(std::string_view line, queued_url& out) {
  unsigned hops = 0;
  if (!field(line, out.depth) || !field(line, hops) || hops > 255 || !field(line, out.lease) || line.empty()) {
    return false;
  }
  for (const char c : line) {
    if (static_cast<unsigned char>(c) <= ' ') {
      return false;  // a normalised URL has no spaces or controls
    }
  }
  out.hops = static_cast<std::uint8_t>(hops);
  out.url = std::string(line);
  return true;
}

spill_file::block spill_file::append(const std::vector<queued_url>& urls) {
  std::string text;
  for (const auto& u : urls) {
    text += encode(u);
  }
  block b;
  b.offset = end_;
  b.line = lines_ + 1;
  b.bytes = static_cast<std::uint32_t>(text.size());
  b.count = static_cast<std::uint32_t>(urls.size());
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::pwrite(fd_, text.data() + done, text.size() - done, static_cast<off_t>(end_ + done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      fail(path_, "cannot write it");
    }
    done += static_cast<std::size_t>(n);
  }
  end_ += text.size();
  live_ += text.size();
  lines_ += urls.size();
  return b;
}

void spill_file::release(const block& b) {
  live_ -= std::min<std::uint64_t>(live_, b.bytes);
  // Blocks are smaller than a page and the hosts' blocks interleave, so the released ranges
  // are merged, and what a merged run covers in whole pages is punched.
  std::uint64_t lo = b.offset;
  std::uint64_t hi = b.offset + b.bytes;
  auto it = released_.upper_bound(lo);
  if (it != released_.begin() && std::prev(it)->second >= lo) {
    --it;
    lo = it->first;
    hi = std::max(hi, it->second);
    it = released_.erase(it);
  }
  while (it != released_.end() && it->first <= hi) {
    hi = std::max(hi, it->second);
    it = released_.erase(it);
  }
  released_.emplace(lo, hi);
  const std::uint64_t first = (lo + page_ - 1) / page_ * page_;
  const std::uint64_t last = hi / page_ * page_;
  if (last > first) {
    // Best effort: EOPNOTSUPP (a file system without holes) only keeps the bytes on disk.
    (void)::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(first),
                      static_cast<off_t>(last - first));
  }
}

void spill_file::read(const block& b, std::vector<queued_url>& out) const {
  std::string text(b.bytes, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::pread(fd_, text.data() + got, text.size() - got, static_cast<off_t>(b.offset + got));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      fail(path_, "cannot read it");
    }
    if (n == 0) {
      throw std::runtime_error(fmt::format("{}:{}: the spill file ends early ({} of {} bytes of a block): was it cut?",
                                           path_, b.line, got, b.bytes));
    }
    got += static_cast<std::size_t>(n);
  }
  std::string_view rest(text);
  for (std::uint32_t i = 0; i < b.count; ++i) {
    const auto nl = rest.find('\n');
    queued_url u;
    if (nl == std::string_view::npos || !decode(rest.substr(0, nl), u)) {
      throw std::runtime_error(
          fmt::format("{}:{}: not a spill line (\"DEPTH HOPS LEASE URL\"): was the file changed?", path_, b.line + i));
    }
    out.push_back(std::move(u));
    rest.remove_prefix(nl + 1);
  }
}

void spill_queue::push(queued_url u, spill_file* file, const limits& l) {
  ++size_;
  if (l.memory_items == 0 || file == nullptr || (blocks_.empty() && tail_.empty() && memory_.size() < l.memory_items)) {
    memory_.push_back(std::move(u));
    return;
  }
  tail_.push_back(std::move(u));
  if (tail_.size() >= std::max<std::size_t>(1, l.block_items)) {
    blocks_.push_back(file->append(tail_));
    spilled_ += tail_.size();
    tail_.clear();
  }
}

queued_url spill_queue::pop(spill_file* file) {
  if (memory_.empty()) {
    if (!blocks_.empty()) {
      std::vector<queued_url> back;
      file->read(blocks_.front(), back);
      file->release(blocks_.front());
      for (auto& u : back) {
        memory_.push_back(std::move(u));
      }
      spilled_ -= blocks_.front().count;
      blocks_.pop_front();
    } else {
      for (auto& u : tail_) {
        memory_.push_back(std::move(u));
      }
      tail_.clear();
    }
  }
  queued_url u = std::move(memory_.front());
  memory_.pop_front();
  --size_;
  return u;
}

}  // namespace exitpool::crawl
