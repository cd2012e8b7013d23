#include "fetch/result_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <vector>

#include "fetch/json_line.hpp"

namespace exitpool::fetch {

namespace {
[[noreturn]] void fail(const std::string& path, const char* what) {
  throw std::runtime_error(path + ": " + what + ": " + std::strerror(errno));
}

// The unsigned number after `key` in `line`, if any. Keys cannot occur inside JSON
// strings here: every '"' in a value is escaped.
std::optional<std::uint64_t> number_after(std::string_view line, std::string_view key) {
  const auto at = line.find(key);
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  std::uint64_t v = 0;
  std::size_t i = at + key.size();
  if (i >= line.size() || line[i] < '0' || line[i] > '9') {
    return std::nullopt;
  }
  for (; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i) {
    v = v * 10 + static_cast<std::uint64_t>(line[i] - '0');
  }
  return v;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}
}  // namespace

result_log::result_log(const std::string& path, bool resume, url_set& done, scan_info& info,
                       const std::string& warc_path, const std::string& warcinfo)
    : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC), 0644);
  if (fd_ < 0) {
    fail(path, "cannot open output");
  }
  std::uint64_t warc_on_disk = 0, warc_keep = 0;
  if (!warc_path.empty()) {
    warc_fd_ = ::open(warc_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC), 0644);
    struct stat st {};
    if (warc_fd_ < 0 || ::fstat(warc_fd_, &st) != 0) {
      fail(warc_path, "cannot open WARC file");
    }
    warc_on_disk = static_cast<std::uint64_t>(st.st_size);
  }
  if (resume) {
    // Stream the file; `good` is the offset after the last complete line.
    std::vector<char> chunk(1 << 20);
    std::string carry;
    std::uint64_t offset = 0, good = 0;
    bool bad = false;
    for (;;) {
      const ssize_t n = ::pread(fd_, chunk.data(), chunk.size(), static_cast<off_t>(offset));
      if (n < 0) {
        fail(path, "cannot read output");
      }
      if (n == 0) {
        break;
      }
      offset += static_cast<std::uint64_t>(n);
      carry.append(chunk.data(), static_cast<std::size_t>(n));
      std::size_t start = 0;
      for (std::size_t nl; (nl = carry.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string_view line(carry.data() + start, nl - start);
        auto url = complete_object(line) ? read_url_field(line) : std::nullopt;
        if (url && warc_fd_ >= 0) {
          auto off = number_after(line, ",\"warc_offset\":");
          auto len = number_after(line, ",\"warc_length\":");
          if (off && len) {
            if (*off + *len > warc_on_disk) {
              url.reset();  // its records did not all reach the WARC: as good as torn
            } else {
              warc_keep = std::max(warc_keep, *off + *len);
            }
          }
        }
        if (!url) {
          bad = true;
          break;
        }
        done.insert(fingerprint(*url));
        ++info.lines;
        good += line.size() + 1;
      }
      if (bad) {
        break;
      }
      carry.erase(0, start);
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      fail(path, "cannot stat output");
    }
    if (static_cast<std::uint64_t>(st.st_size) > good) {
      info.truncated_bytes = static_cast<std::uint64_t>(st.st_size) - good;
      if (::ftruncate(fd_, static_cast<off_t>(good)) != 0) {
        fail(path, "cannot truncate the torn tail of the output");
      }
      ::fdatasync(fd_);
    }
  }
  if (warc_fd_ >= 0) {
    if (warc_keep == 0) {
      // Nothing worth keeping (a new WARC, or only a warcinfo and orphans): start it afresh.
      if (::ftruncate(warc_fd_, 0) != 0 || !write_all(warc_fd_, warcinfo)) {
        fail(warc_path, "cannot write WARC file");
      }
      info.warc_truncated_bytes = warc_on_disk;
      warc_size_ = warcinfo.size();
    } else {
      if (warc_on_disk > warc_keep && ::ftruncate(warc_fd_, static_cast<off_t>(warc_keep)) != 0) {
        fail(warc_path, "cannot truncate WARC file");
      }
      info.warc_truncated_bytes = warc_on_disk - warc_keep;
      warc_size_ = warc_keep;
    }
    if (::lseek(warc_fd_, 0, SEEK_END) < 0) {
      fail(warc_path, "cannot seek WARC file");
    }
  }
  // From here on every write goes to the end.
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags | O_APPEND) != 0) {
    fail(path, "cannot set O_APPEND");
  }
}

result_log::~result_log() {
  if (warc_fd_ >= 0) {
    ::fdatasync(warc_fd_);
    ::close(warc_fd_);
  }
  if (fd_ >= 0) {
    ::fdatasync(fd_);
    ::close(fd_);
  }
}

bool result_log::append_with_warc(std::string_view warc_bytes,
                                  const std::function<void(std::string&, std::uint64_t, std::uint64_t)>& make_line) {
  std::lock_guard lock(write_mu_);
  const std::uint64_t offset = warc_size_;
  if (!write_all(warc_fd_, warc_bytes)) {
    return false;
  }
  warc_size_ += warc_bytes.size();
  line_.clear();
  make_line(line_, offset, warc_bytes.size());
  return write_all(fd_, line_);
}

bool result_log::append(std::string_view lines) {
  std::lock_guard lock(write_mu_);
  return write_all(fd_, lines);
}

bool result_log::sync() {
  // The WARC first. (A line may still reach the disk before its records do, e.g. when it
  // is written between the two calls; resume treats such a line as torn.)
  const bool warc_ok = warc_fd_ < 0 || ::fdatasync(warc_fd_) == 0;
  return warc_ok && ::fdatasync(fd_) == 0;
}

}  // namespace exitpool::fetch
