#pragma once
// Small text helpers shared by the codecs (ASCII only: protocol text, not prose).
#include <string>
#include <string_view>

namespace exitpool::proto {

// ASCII lower-case copy.
std::string lower(std::string_view s);
// 0..15 for a hex digit, -1 otherwise.
int hex_value(char c);
// Whether `s` is exactly an IPv4 / IPv6 address literal (no brackets, no port).
bool valid_ipv4(std::string_view s);
bool valid_ipv6(std::string_view s);

}  // namespace exitpool::proto
