#pragma once
// IPv6 prefixes as exits (`direct://[2001:db8:42::]/64`): the address arithmetic alone.
// Pure functions, no I/O, any thread.
//
// A prefix exit sends each connection from an address inside its prefix: a random one
// (host bits from the caller's random source), or, for a sticky session, the one its
// key hashes to, so that the session keeps its address. The dialer binds it with
// IPV6_FREEBIND; the host routes the prefix to itself once (`ip -6 route add local
// PREFIX dev lo`).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace exitpool::proto {

using ipv6_bytes = std::array<std::uint8_t, 16>;  // network byte order

struct ipv6_prefix {
  ipv6_bytes network{};  // host bits are zero
  int length = 128;
  friend bool operator==(const ipv6_prefix&, const ipv6_prefix&) = default;
};

// Prefix lengths a pool line may use: a /48 is the most a site is usually routed, and
// shorter ones would only spread connections over addresses nobody routes here.
inline constexpr int min_prefix_length = 48;
inline constexpr int max_prefix_length = 128;

struct ipv6_prefix_parse {
  std::optional<ipv6_prefix> prefix;
  std::string error;  // non-empty when prefix is empty: what is wrong, quoting the text
};
// `address` without brackets, `length` the digits after '/'. Refuses host bits set
// ("2001:db8::1/64" names an address, not a prefix) and lengths outside 48..128.
ipv6_prefix_parse parse_ipv6_prefix(std::string_view address, std::string_view length);

// The address of `p` whose host bits are the low bits of the 128-bit value hi:lo.
// Never the all-zero host part of a prefix shorter than /128 (RFC 4291's Subnet-Router
// anycast address): its lowest bit is set instead.
ipv6_bytes address_in_prefix(const ipv6_prefix& p, std::uint64_t hi, std::uint64_t lo);

// The address a sticky session keeps: `key_hash` (a hash of the session key) spread
// over all host bits, so that sessions land far apart and the same key always lands
// on the same address.
ipv6_bytes sticky_address_in_prefix(const ipv6_prefix& p, std::uint64_t key_hash);

bool prefix_contains(const ipv6_prefix& p, const ipv6_bytes& a);

// Text forms: "2001:db8:42::" and "2001:db8:42::/64".
std::string format_ipv6(const ipv6_bytes& a);
std::string format_prefix(const ipv6_prefix& p);

}  // namespace exitpool::proto
