#include "gateway/acl.hpp"

#include <fmt/format.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>

namespace exitpool::gateway {

namespace asio = boost::asio;

namespace {

std::optional<unsigned> parse_number(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    return std::nullopt;
  }
  return v;
}

// IPv4-mapped IPv6 addresses are checked as the IPv4 address they carry.
asio::ip::address plain(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

}  // namespace

bool cidr::contains(const asio::ip::address& raw) const {
  const auto a = plain(raw);
  if (a.is_v4() != network.is_v4()) {
    return false;
  }
  if (a.is_v4()) {
    const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
    return (a.to_v4().to_uint() & mask) == (network.to_v4().to_uint() & mask);
  }
  const auto x = a.to_v6().to_bytes();
  const auto n = network.to_v6().to_bytes();
  int bits = prefix;
  for (std::size_t i = 0; i < x.size() && bits > 0; ++i, bits -= 8) {
    const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((x[i] & mask) != (n[i] & mask)) {
      return false;
    }
  }
  return true;
}

std::optional<cidr> parse_cidr(std::string_view text) {
  auto slash = text.find('/');
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) {
    return std::nullopt;
  }
  const int max = addr.is_v4() ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    auto n = parse_number(text.substr(slash + 1));
    if (!n || static_cast<int>(*n) > max) {
      return std::nullopt;
    }
    prefix = static_cast<int>(*n);
  }
  return cidr{addr, prefix};
}

std::optional<std::vector<std::pair<std::uint16_t, std::uint16_t>>> parse_port_ranges(std::string_view text) {
  std::vector<std::pair<std::uint16_t, std::uint16_t>> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    auto dash = item.find('-');
    auto lo = parse_number(item.substr(0, dash));
    auto hi = dash == std::string_view::npos ? lo : parse_number(item.substr(dash + 1));
    if (!lo || !hi || *lo == 0 || *hi > 65535 || *lo > *hi) {
      return std::nullopt;
    }
    out.emplace_back(static_cast<std::uint16_t>(*lo), static_cast<std::uint16_t>(*hi));
  }
  if (out.empty()) {
    return std::nullopt;
  }
  return out;
}

access_policy::access_policy(std::vector<cidr> deny, std::vector<std::pair<std::uint16_t, std::uint16_t>> ports,
                             std::vector<asio::ip::tcp::endpoint> self, std::vector<asio::ip::address> local)
    : deny_(std::move(deny)), ports_(std::move(ports)), self_(std::move(self)), local_(std::move(local)) {}

std::string access_policy::check(std::string_view host, std::uint16_t port) const {
  if (!ports_.empty() && std::none_of(ports_.begin(), ports_.end(),
                                      [port](const auto& r) { return port >= r.first && port <= r.second; })) {
    return fmt::format("port {} is not allowed (--allow-ports)", port);
  }
  boost::system::error_code ec;
  auto a = host == "localhost" ? asio::ip::make_address("127.0.0.1") : asio::ip::make_address(std::string(host), ec);
  if (ec) {
    return {};
  }
  return check(a, port);
}

std::string access_policy::check(const asio::ip::address& raw, std::uint16_t port) const {
  const auto a = plain(raw);
  for (const auto& ep : self_) {
    if (ep.port() != port) {
      continue;
    }
    const auto& listen = ep.address();
    const bool same = listen.is_unspecified() ? a.is_loopback() || a.is_unspecified() ||
                                                    std::find(local_.begin(), local_.end(), a) != local_.end()
                                              : a == plain(listen) || (listen.is_loopback() && a.is_unspecified());
    if (same) {
      return fmt::format("{}:{} is this gateway itself (the request would loop)", a.to_string(), port);
    }
  }
  for (const auto& c : deny_) {
    if (c.contains(a)) {
      return fmt::format("{} is in a denied network ({}/{})", a.to_string(), c.network.to_string(), c.prefix);
    }
  }
  return {};
}

std::vector<asio::ip::address> local_addresses() {
  std::vector<asio::ip::address> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return out;
  }
  for (auto* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) {
      continue;
    }
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      out.emplace_back(asio::ip::address_v4(ntohl(sin->sin_addr.s_addr)));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      asio::ip::address_v6::bytes_type b;
      std::copy(std::begin(sin6->sin6_addr.s6_addr), std::end(sin6->sin6_addr.s6_addr), b.begin());
      out.emplace_back(asio::ip::address_v6(b));
    }
  }
  ::freeifaddrs(list);
  return out;
}

}  // namespace exitpool::gateway
