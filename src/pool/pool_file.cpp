#include "pool/pool_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace exitpool::pool {

std::vector<proto::exit_spec> load_pool_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error(path + ": cannot open pool file: " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return proto::parse_pool_text(text.str(), path);
}

}  // namespace exitpool::pool
