#pragma once
// Base64 (RFC 4648, standard alphabet, padded) for Basic credentials. Pure functions.
#include <optional>
#include <string>
#include <string_view>

namespace exitpool::proto {
std::string base64_encode(std::string_view in);
// Strict: rejects characters outside the alphabet, bad padding, wrong length.
std::optional<std::string> base64_decode(std::string_view in);
}  // namespace exitpool::proto
