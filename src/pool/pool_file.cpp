#include "pool/pool_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace exitpool::pool {

std::string read_pool_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw std::runtime_error(path + ": cannot open pool file: " + std::strerror(errno));
  }
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } guard{fd};
  // Sized from fstat, one byte more so that end of file needs no second buffer; a file
  // that grows meanwhile is still read to its end.
  struct stat st {};
  const std::size_t expected = ::fstat(fd, &st) == 0 && st.st_size > 0 ? static_cast<std::size_t>(st.st_size) : 0;
  std::string text(expected + 1 > 4096 ? expected + 1 : 4096, '\0');
  std::size_t used = 0;
  for (;;) {
    if (used == text.size()) {
      text.resize(text.size() * 2);
    }
    const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw std::runtime_error(path + ": cannot read pool file: " + std::strerror(errno));
    }
    if (n == 0) {
      break;
    }
    used += static_cast<std::size_t>(n);
  }
  text.resize(used);
  return text;
}

std::vector<proto::exit_spec> load_pool_file(const std::string& path) {
  return proto::parse_pool_text(read_pool_file(path), path);
}

}  // namespace exitpool::pool
