#include "proto/ipv6_prefix.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

namespace exitpool::proto {
namespace {

// splitmix64's finaliser: every input bit flips about half of the output bits.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9u;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebu;
  x ^= x >> 31;
  return x;
}

// Byte i of the 128-bit value hi:lo, most significant first (as the address is laid out).
constexpr std::uint8_t byte_of(std::uint64_t hi, std::uint64_t lo, int i) {
  const std::uint64_t word = i < 8 ? hi : lo;
  return static_cast<std::uint8_t>(word >> (8 * (7 - (i % 8))));
}

// The mask of byte i's network bits for a prefix of `length` bits.
constexpr std::uint8_t network_mask(int length, int i) {
  const int bits = length - 8 * i;
  if (bits >= 8) {
    return 0xff;
  }
  if (bits <= 0) {
    return 0;
  }
  return static_cast<std::uint8_t>(0xff << (8 - bits));
}

}  // namespace

ipv6_prefix_parse parse_ipv6_prefix(std::string_view address, std::string_view length) {
  ipv6_prefix_parse out;
  const std::string text = fmt::format("{}/{}", address, length);
  in6_addr a{};
  if (address.size() >= INET6_ADDRSTRLEN || inet_pton(AF_INET6, std::string(address).c_str(), &a) != 1) {
    out.error = fmt::format("bad IPv6 address '{}' in prefix '{}'", address, text);
    return out;
  }
  int len = 0;
  if (length.empty() || length.size() > 3) {
    len = -1;
  }
  for (char c : length) {
    if (c < '0' || c > '9') {
      len = -1;
      break;
    }
    len = len * 10 + (c - '0');
  }
  if (len < min_prefix_length || len > max_prefix_length) {
    out.error = fmt::format("bad prefix length '{}' in '{}' (want {} to {})", length, text, min_prefix_length,
                            max_prefix_length);
    return out;
  }
  ipv6_prefix p;
  p.length = len;
  bool host_bits = false;
  for (int i = 0; i < 16; ++i) {
    const std::uint8_t m = network_mask(len, i);
    p.network[i] = a.s6_addr[i] & m;
    host_bits = host_bits || (a.s6_addr[i] & static_cast<std::uint8_t>(~m)) != 0;
  }
  if (host_bits) {
    out.error = fmt::format("'{}' has host bits set: the prefix is {}", text, format_prefix(p));
    return out;
  }
  out.prefix = p;
  return out;
}

ipv6_bytes address_in_prefix(const ipv6_prefix& p, std::uint64_t hi, std::uint64_t lo) {
  ipv6_bytes out{};
  bool any_host_bit = false;
  for (int i = 0; i < 16; ++i) {
    const std::uint8_t m = network_mask(p.length, i);
    const auto host = static_cast<std::uint8_t>(byte_of(hi, lo, i) & ~m);
    any_host_bit = any_host_bit || host != 0;
    out[i] = static_cast<std::uint8_t>((p.network[i] & m) | host);
  }
  if (!any_host_bit && p.length < 128) {
    out[15] |= 1;
  }
  return out;
}

ipv6_bytes sticky_address_in_prefix(const ipv6_prefix& p, std::uint64_t key_hash) {
  return address_in_prefix(p, mix64(key_hash ^ 0x9e3779b97f4a7c15u), mix64(key_hash));
}

bool prefix_contains(const ipv6_prefix& p, const ipv6_bytes& a) {
  for (int i = 0; i < 16; ++i) {
    const std::uint8_t m = network_mask(p.length, i);
    if ((a[i] & m) != (p.network[i] & m)) {
      return false;
    }
  }
  return true;
}

std::string format_ipv6(const ipv6_bytes& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
  return buf;
}

std::string format_prefix(const ipv6_prefix& p) {
  return fmt::format("{}/{}", format_ipv6(p.network), p.length);
}

}  // namespace exitpool::proto
