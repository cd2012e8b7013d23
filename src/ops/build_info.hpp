#pragma once
// What this binary is: version, git revision and how it was built. Defined in a file the
// build writes (cmake/build_info.cmake) and compiled into the executable only, so a new
// revision relinks the binary and rebuilds nothing else.

#include <string>
#include <string_view>

namespace exitpool::ops {

// "0.1.0"
std::string_view build_version();
// `exitpool --version`: "exitpool 0.1.0", then revision, build type, compiler and flags, one per line.
std::string version_text();

}  // namespace exitpool::ops
