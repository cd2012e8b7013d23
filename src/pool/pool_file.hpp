#pragma once
// Reading a pool file from disk (startup, reload, check, fetch). The parsing itself
// is proto::parse_pool_text; this only adds the file.
#include <string>
#include <vector>

#include "proto/pool_line.hpp"

namespace exitpool::pool {

// The whole file, read with one read(2) per buffer (a million-line pool is ~100 MB).
// Throws std::runtime_error ("FILE: cannot open pool file: reason", or "cannot read").
std::string read_pool_file(const std::string& path);

// Throws proto::pool_error("FILE:LINE: ...") for a bad line and std::runtime_error
// ("FILE: cannot open pool file: reason") when the file cannot be read.
std::vector<proto::exit_spec> load_pool_file(const std::string& path);

}  // namespace exitpool::pool
