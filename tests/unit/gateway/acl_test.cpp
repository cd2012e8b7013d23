#include "gateway/acl.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace exitpool::gateway {
namespace {

namespace ip = boost::asio::ip;

TEST(ParseCidr, Table) {
  struct tc {
    std::string text;
    bool ok;
    int prefix;
  };
  for (const auto& c : {
           tc{"10.0.0.0/8", true, 8},
           tc{"192.168.1.7", true, 32},
           tc{"0.0.0.0/0", true, 0},
           tc{"fe80::/10", true, 10},
           tc{"::1", true, 128},
           tc{"10.0.0.0/33", false, 0},
           tc{"fe80::/129", false, 0},
           tc{"10.0.0.0/", false, 0},
           tc{"10.0.0.0/x", false, 0},
           tc{"10.0.0.0/-1", false, 0},
           tc{"example.com/8", false, 0},
           tc{"", false, 0},
       }) {
    SCOPED_TRACE(c.text);
    auto r = parse_cidr(c.text);
    ASSERT_EQ(r.has_value(), c.ok);
    if (c.ok) {
      EXPECT_EQ(r->prefix, c.prefix);
    }
  }
}

TEST(Cidr, Contains) {
  struct tc {
    std::string cidr;
    std::string address;
    bool want;
  };
  for (const auto& c : {
           tc{"10.0.0.0/8", "10.255.1.2", true},
           tc{"10.0.0.0/8", "11.0.0.1", false},
           tc{"169.254.0.0/16", "169.254.169.254", true},
           tc{"0.0.0.0/0", "8.8.8.8", true},
           tc{"192.168.1.7", "192.168.1.7", true},
           tc{"192.168.1.7", "192.168.1.8", false},
           tc{"fe80::/10", "fe80::1", true},
           tc{"fe80::/10", "febf::1", true},
           tc{"fe80::/10", "fec0::1", false},
           // IPv4-mapped IPv6 addresses are checked as the IPv4 address they carry.
           tc{"169.254.0.0/16", "::ffff:169.254.169.254", true},
           tc{"10.0.0.0/8", "::1", false},  // families never match
           tc{"::/128", "0.0.0.0", false},
       }) {
    SCOPED_TRACE(c.cidr + " " + c.address);
    EXPECT_EQ(parse_cidr(c.cidr)->contains(ip::make_address(c.address)), c.want);
  }
}

TEST(ParsePortRanges, Table) {
  using ranges = std::vector<std::pair<std::uint16_t, std::uint16_t>>;
  EXPECT_EQ(parse_port_ranges("80"), (ranges{{80, 80}}));
  EXPECT_EQ(parse_port_ranges("80,443,1025-65535"), (ranges{{80, 80}, {443, 443}, {1025, 65535}}));
  EXPECT_TRUE(parse_port_ranges(default_allowed_ports).has_value());
  EXPECT_EQ(parse_port_ranges("80,"), (ranges{{80, 80}}));  // a trailing comma is tolerated
  for (const char* bad : {"", "0", "65536", "100-50", ",80", "a", "80-", "1-2-3", " 80"}) {
    EXPECT_FALSE(parse_port_ranges(bad).has_value()) << bad;
  }
}

access_policy defaults(std::vector<ip::tcp::endpoint> self = {}, std::vector<ip::address> local = {}) {
  std::vector<cidr> deny;
  for (auto d : default_denied_networks) {
    deny.push_back(*parse_cidr(d));
  }
  deny.push_back(*parse_cidr("10.0.0.0/8"));  // a --deny
  return access_policy(std::move(deny), *parse_port_ranges(default_allowed_ports), std::move(self), std::move(local));
}

TEST(AccessPolicy, TargetsAsTheClientNamesThem) {
  const auto p = defaults();
  struct tc {
    std::string host;
    std::uint16_t port;
    std::string why_has;  // empty: allowed
  };
  for (const auto& c : {
           tc{"example.com", 443, ""},
           tc{"example.com", 8080, ""},
           tc{"example.com", 22, "port 22 is not allowed"},
           tc{"example.com", 25, "port 25 is not allowed"},
           tc{"93.184.216.34", 80, ""},
           tc{"169.254.169.254", 80, "denied network (169.254.0.0/16)"},
           tc{"10.1.2.3", 80, "denied network (10.0.0.0/8)"},
           tc{"0.0.0.0", 80, "denied network"},
           tc{"224.0.0.1", 80, "denied network"},
           tc{"fe80::1", 80, "denied network"},
           tc{"::ffff:169.254.1.1", 80, "denied network"},
           // Host names are resolved later (the dialer checks the address it gets).
           tc{"metadata.internal", 80, ""},
       }) {
    SCOPED_TRACE(c.host + ":" + std::to_string(c.port));
    const auto why = p.check(c.host, c.port);
    if (c.why_has.empty()) {
      EXPECT_EQ(why, "");
    } else {
      EXPECT_NE(why.find(c.why_has), std::string::npos) << why;
    }
  }
}

TEST(AccessPolicy, RequestsToTheGatewayItselfLoop) {
  const auto on_loopback = defaults({ip::tcp::endpoint(ip::make_address("127.0.0.1"), 8080)});
  EXPECT_NE(on_loopback.check("127.0.0.1", 8080).find("this gateway itself"), std::string::npos);
  EXPECT_NE(on_loopback.check("localhost", 8080).find("this gateway itself"), std::string::npos);
  EXPECT_EQ(on_loopback.check("127.0.0.1", 8081), "");  // another service on loopback
  EXPECT_EQ(on_loopback.check("127.0.0.2", 8080), "");

  // A wildcard listener is every local address.
  const auto everywhere =
      defaults({ip::tcp::endpoint(ip::make_address("0.0.0.0"), 3128)}, {ip::make_address("192.0.2.10")});
  EXPECT_NE(everywhere.check("192.0.2.10", 3128).find("this gateway itself"), std::string::npos);
  EXPECT_NE(everywhere.check("127.0.0.5", 3128).find("this gateway itself"), std::string::npos);
  EXPECT_NE(everywhere.check(ip::make_address("::ffff:192.0.2.10"), 3128).find("this gateway itself"),
            std::string::npos);
  EXPECT_EQ(everywhere.check("192.0.2.11", 3128), "");
}

TEST(AccessPolicy, ResolvedAddressesSkipThePortRule) {
  // The port was checked on the name; a resolved address is checked for networks and loops.
  const auto p = defaults();
  EXPECT_EQ(p.check(ip::make_address("93.184.216.34"), 22), "");
  EXPECT_NE(p.check(ip::make_address("10.0.0.1"), 443), "");
}

TEST(AccessPolicy, EmptyPolicyAllowsEverything) {
  const access_policy open;
  EXPECT_EQ(open.check("169.254.169.254", 22), "");
}

}  // namespace
}  // namespace exitpool::gateway
