#pragma once
// Where clients may go through the gateway: target ports, denied networks, and the
// gateway itself (a request to its own listener or admin port would loop).
// Immutable after startup; read by every shard.

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace exitpool::gateway {

struct cidr {
  boost::asio::ip::address network;
  int prefix = 0;
  bool contains(const boost::asio::ip::address& a) const;
};
// "10.0.0.0/8", "fe80::/10", or a bare address (/32, /128). nullopt when malformed.
std::optional<cidr> parse_cidr(std::string_view text);

// "80,443,1025-65535". nullopt when malformed (empty, reversed range, port 0 or > 65535).
std::optional<std::vector<std::pair<std::uint16_t, std::uint16_t>>> parse_port_ranges(std::string_view text);

// Squid's Safe_ports: web ports and everything unprivileged; no SSH, SMTP, ...
inline constexpr std::string_view default_allowed_ports = "80,443,21,70,210,280,488,591,777,1025-65535";
// Never useful through a proxy, dangerous to allow (cloud metadata lives in 169.254/16).
inline constexpr std::string_view default_denied_networks[] = {
    "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", "::/128", "fe80::/10", "ff00::/8"};

class access_policy {
 public:
  access_policy() = default;
  // `self`: the gateway's own listening endpoints (an unspecified address stands for
  // every local address); `local_addresses`: this host's addresses.
  access_policy(std::vector<cidr> deny, std::vector<std::pair<std::uint16_t, std::uint16_t>> ports,
                std::vector<boost::asio::ip::tcp::endpoint> self,
                std::vector<boost::asio::ip::address> local_addresses);

  // Checks a target as the client named it. Host names other than "localhost" pass
  // (they are resolved later, by the dialer or the exit). Returns why it is refused,
  // or an empty string.
  std::string check(std::string_view host, std::uint16_t port) const;
  // Checks an address the gateway resolved itself (direct and socks5:// exits).
  std::string check(const boost::asio::ip::address& a, std::uint16_t port) const;

 private:
  std::vector<cidr> deny_;
  std::vector<std::pair<std::uint16_t, std::uint16_t>> ports_;
  std::vector<boost::asio::ip::tcp::endpoint> self_;
  std::vector<boost::asio::ip::address> local_;
};

// This host's interface addresses (getifaddrs), for loop detection.
std::vector<boost::asio::ip::address> local_addresses();

}  // namespace exitpool::gateway
