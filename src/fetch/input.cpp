#include "fetch/input.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace exitpool::fetch {

line_reader::line_reader(const std::string& path) : path_(path) {
  gzFile f = path == "-" ? gzdopen(dup(STDIN_FILENO), "rb") : gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    throw std::runtime_error(path + ": cannot open input: " + std::strerror(errno));
  }
  gzbuffer(f, 256 * 1024);
  gz_ = f;
}

line_reader::~line_reader() {
  if (gz_ != nullptr) {
    gzclose(static_cast<gzFile>(gz_));
  }
}

bool line_reader::fill() {
  if (eof_) {
    return false;
  }
  buf_.erase(0, pos_);
  pos_ = 0;
  const std::size_t old = buf_.size();
  buf_.resize(old + 256 * 1024);
  const int n = gzread(static_cast<gzFile>(gz_), buf_.data() + old, 256 * 1024);
  if (n < 0) {
    int err = 0;
    const char* msg = gzerror(static_cast<gzFile>(gz_), &err);
    throw std::runtime_error(path_ + ": read error: " + (msg ? msg : "unknown"));
  }
  buf_.resize(old + static_cast<std::size_t>(n));
  if (n == 0) {
    eof_ = true;
    return false;
  }
  return true;
}

std::optional<std::string_view> line_reader::next() {
  for (;;) {
    const auto nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      std::string_view line(buf_.data() + pos_, nl - pos_);
      pos_ = nl + 1;
      if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
      }
      return line;
    }
    if (!fill()) {
      if (pos_ < buf_.size()) {  // last line without "\n"
        std::string_view line(buf_.data() + pos_, buf_.size() - pos_);
        pos_ = buf_.size();
        if (!line.empty() && line.back() == '\r') {
          line.remove_suffix(1);
        }
        return line;
      }
      return std::nullopt;
    }
  }
}

std::optional<std::uint64_t> count_lines(const std::string& path) {
  if (path == "-") {
    return std::nullopt;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  struct stat st {};
  unsigned char magic[2] = {0, 0};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      (::pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b)) {
    ::close(fd);
    return std::nullopt;
  }
  std::vector<char> buf(1 << 20);
  std::uint64_t lines = 0;
  char last = '\n';
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) {
      break;
    }
    for (const char* p = buf.data(); (p = static_cast<const char*>(std::memchr(p, '\n', buf.data() + n - p))); ++p) {
      ++lines;
    }
    last = buf[static_cast<std::size_t>(n) - 1];
  }
  ::close(fd);
  return lines + (last != '\n' ? 1 : 0);
}

std::string_view trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
  while (!s.empty() && space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

url_parts parse_url(std::string_view url) {
  url_parts out;
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return out;
  }
  std::string scheme(url.substr(0, sep));
  for (auto& c : scheme) {
    c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  if (scheme == "https") {
    out.https = true;
    out.port = 443;
  } else if (scheme == "http") {
    out.port = 80;
  } else {
    return out;
  }
  std::string_view rest = url.substr(sep + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return out;
    }
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      port = authority.substr(close + 2);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    return out;
  }
  if (!port.empty()) {
    unsigned v = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || v > 65535) {
        return out;
      }
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 65535) {
      return out;
    }
    out.port = static_cast<std::uint16_t>(v);
  }
  out.host.assign(host);
  for (auto& c : out.host) {
    c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  out.ok = true;
  return out;
}

int literal_family(const std::string& host) {
  unsigned char buf[16];
  if (::inet_pton(AF_INET, host.c_str(), buf) == 1) {
    return 4;
  }
  if (::inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    return 6;
  }
  return 0;
}

}  // namespace exitpool::fetch
