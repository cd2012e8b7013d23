#include "proto/ipv6_prefix.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace exitpool::proto {
namespace {

ipv6_prefix prefix_of(std::string_view addr, std::string_view len) {
  auto p = parse_ipv6_prefix(addr, len);
  EXPECT_TRUE(p.prefix.has_value()) << p.error;
  return p.prefix.value_or(ipv6_prefix{});
}

TEST(ipv6_prefix, parses_and_formats) {
  struct row {
    const char* addr;
    const char* len;
    const char* formatted;  // nullptr: refused
  };
  for (const row& r : {
           row{"2001:db8:42::", "64", "2001:db8:42::/64"},
           row{"2001:DB8:42:0::", "48", "2001:db8:42::/48"},
           row{"2001:db8:42:ab00::", "56", "2001:db8:42:ab00::/56"},
           row{"2001:db8::7", "128", "2001:db8::7/128"},
           row{"2001:db8:42:ab80::", "57", "2001:db8:42:ab80::/57"},
           row{"2001:db8:42:ab40::", "57", nullptr},  // bit 58 is a host bit
           row{"2001:db8::1", "64", nullptr},
           row{"2001:db8::", "47", nullptr},
           row{"2001:db8::", "129", nullptr},
           row{"2001:db8::", "", nullptr},
           row{"2001:db8::", "0064", nullptr},
           row{"2001:db8::", "-64", nullptr},
           row{"10.0.0.0", "64", nullptr},
           row{"2001:db8::zz", "64", nullptr},
       }) {
    const auto p = parse_ipv6_prefix(r.addr, r.len);
    if (r.formatted == nullptr) {
      EXPECT_FALSE(p.prefix.has_value()) << r.addr << "/" << r.len;
      EXPECT_FALSE(p.error.empty()) << r.addr << "/" << r.len;
      continue;
    }
    ASSERT_TRUE(p.prefix.has_value()) << r.addr << "/" << r.len << ": " << p.error;
    EXPECT_EQ(format_prefix(*p.prefix), r.formatted);
  }
  EXPECT_EQ(parse_ipv6_prefix("2001:db8::1", "64").error,
            "'2001:db8::1/64' has host bits set: the prefix is 2001:db8::/64");
}

TEST(ipv6_prefix, host_bits_come_from_the_value_and_stay_inside) {
  const auto p = prefix_of("2001:db8:42::", "64");
  EXPECT_EQ(format_ipv6(address_in_prefix(p, 0xffffffffffffffffu, 0x0123456789abcdefu)),
            "2001:db8:42:0:123:4567:89ab:cdef");
  // A /56: 8 host bits of the upper half come from hi.
  const auto p56 = prefix_of("2001:db8:42:ab00::", "56");
  EXPECT_EQ(format_ipv6(address_in_prefix(p56, 0x00000000000000ffu, 2)), "2001:db8:42:abff::2");
  // An odd length: the bits above it are the network's whatever the value says.
  const auto p57 = prefix_of("2001:db8:42:ab80::", "57");
  EXPECT_EQ(format_ipv6(address_in_prefix(p57, 0, 0xffu)), "2001:db8:42:ab80::ff");
  EXPECT_EQ(format_ipv6(address_in_prefix(p57, 0xffffu, 1)), "2001:db8:42:abff::1");
  // /48: 80 host bits, 16 of them from hi.
  const auto p48 = prefix_of("2001:db8:42::", "48");
  EXPECT_EQ(format_ipv6(address_in_prefix(p48, 0xffffffffffff1234u, 5)), "2001:db8:42:1234::5");
  // /128: the one address.
  const auto one = prefix_of("2001:db8::7", "128");
  EXPECT_EQ(format_ipv6(address_in_prefix(one, ~0ull, ~0ull)), "2001:db8::7");

  std::mt19937_64 rng(7);
  for (const auto& q : {p, p56, p57, p48}) {
    for (int i = 0; i < 1000; ++i) {
      EXPECT_TRUE(prefix_contains(q, address_in_prefix(q, rng(), rng())));
    }
  }
  EXPECT_FALSE(prefix_contains(p, prefix_of("2001:db8:43::", "64").network));
}

TEST(ipv6_prefix, never_the_subnet_router_anycast_address) {
  const auto p = prefix_of("2001:db8:42::", "64");
  EXPECT_EQ(format_ipv6(address_in_prefix(p, 0, 0)), "2001:db8:42::1");
  // Bits above the prefix alone do not make a host part.
  EXPECT_EQ(format_ipv6(address_in_prefix(p, ~0ull, 0)), "2001:db8:42::1");
}

TEST(ipv6_prefix, random_values_spread_over_the_prefix) {
  const auto p = prefix_of("2001:db8:42::", "64");
  std::mt19937_64 rng(1);
  std::set<ipv6_bytes> seen;
  for (int i = 0; i < 10000; ++i) {
    seen.insert(address_in_prefix(p, rng(), rng()));
  }
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(ipv6_prefix, a_sticky_key_keeps_its_address_and_keys_spread) {
  const auto p = prefix_of("2001:db8:42::", "64");
  EXPECT_EQ(sticky_address_in_prefix(p, 12345), sticky_address_in_prefix(p, 12345));
  std::set<ipv6_bytes> seen;
  std::set<std::uint8_t> last_bytes;
  std::set<std::uint8_t> first_host_bytes;
  for (std::uint64_t k = 0; k < 4096; ++k) {
    const auto a = sticky_address_in_prefix(p, k);  // consecutive hashes: the worst case for a weak mix
    EXPECT_TRUE(prefix_contains(p, a));
    seen.insert(a);
    last_bytes.insert(a[15]);
    first_host_bytes.insert(a[8]);
  }
  EXPECT_EQ(seen.size(), 4096u);
  EXPECT_EQ(last_bytes.size(), 256u);
  EXPECT_EQ(first_host_bytes.size(), 256u);
  // A /48 spreads over the subnet bits too.
  const auto p48 = prefix_of("2001:db8:42::", "48");
  std::set<std::uint8_t> subnet_bytes;
  for (std::uint64_t k = 0; k < 4096; ++k) {
    subnet_bytes.insert(sticky_address_in_prefix(p48, k)[7]);
  }
  EXPECT_EQ(subnet_bytes.size(), 256u);
}

}  // namespace
}  // namespace exitpool::proto
