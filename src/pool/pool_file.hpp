#pragma once
// Reading a pool file from disk (startup, reload, check, fetch). The parsing itself
// is proto::parse_pool_text; this only adds the file.
#include <string>
#include <vector>

#include "proto/pool_line.hpp"

namespace exitpool::pool {

// Throws proto::pool_error("FILE:LINE: ...") for a bad line and std::runtime_error
// ("FILE: cannot open pool file: reason") when the file cannot be read.
std::vector<proto::exit_spec> load_pool_file(const std::string& path);

}  // namespace exitpool::pool
