#include "gateway/port_map.hpp"

#include <fmt/format.h>

#include <charconv>

#include "proto/http_head.hpp"
#include "proto/text.hpp"

namespace exitpool::gateway {

namespace {

std::optional<std::uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(v);
}

}  // namespace

port_map_result parse_port_map(std::string_view text) {
  port_map_result r;
  auto fail = [&](std::string why) {
    r.error = fmt::format("--port-map '{}': {}", proto::printable(text), why);
    return r;
  };
  const auto colon = text.find(':');
  const std::string_view ports = text.substr(0, colon);
  const std::string_view opts = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  port_map m;
  m.text = std::string(text);
  const auto dash = ports.find('-');
  auto first = parse_port(ports.substr(0, dash));
  auto last = dash == std::string_view::npos ? first : parse_port(ports.substr(dash + 1));
  if (!first || !last) {
    return fail("expected PORT or LOW-HIGH (1-65535) before the options");
  }
  if (*last < *first) {
    return fail("the range is reversed");
  }
  m.first = *first;
  m.last = *last;
  // The options become a proxy username ("port-country-us-...") so that they mean exactly
  // what they mean there: same keys, aliases, value checks and messages.
  std::string username = "port";
  std::string_view rest = opts;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view kv = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == kv.size()) {
      return fail(fmt::format("expected KEY=VALUE, got '{}'", proto::printable(kv)));
    }
    const std::string_view key = kv.substr(0, eq);
    const std::string_view value = kv.substr(eq + 1);
    if (value.find('-') != std::string_view::npos || key.find('-') != std::string_view::npos) {
      return fail(fmt::format("'{}': no '-' in keys or values", proto::printable(kv)));
    }
    if (proto::iequals(key, "session") || proto::iequals(key, "sessid")) {
      return fail("'session' cannot be set: each port is its own session");
    }
    username += fmt::format("-{}-{}", key, value);
  }
  auto parsed = proto::parse_credentials(username, "");
  if (!parsed.params) {
    return fail(parsed.error);
  }
  m.options = std::move(*parsed.params);
  m.options.user.clear();
  m.options.password.clear();
  r.map = std::move(m);
  return r;
}

proto::route_params port_session(const port_map& m, std::uint16_t port) {
  proto::route_params p = m.options;
  p.session = fmt::format("port:{}", port);
  return p;
}

std::string check_port_maps(const std::vector<port_map>& maps, const std::vector<std::uint16_t>& reserved) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < maps.size(); ++i) {
    const auto& a = maps[i];
    total += static_cast<std::size_t>(a.last - a.first) + 1;
    for (auto port : reserved) {
      if (port >= a.first && port <= a.last) {
        return fmt::format("--port-map '{}': port {} is already the gateway's (--listen or --admin)",
                           proto::printable(a.text), port);
      }
    }
    for (std::size_t j = 0; j < i; ++j) {
      const auto& b = maps[j];
      if (a.first <= b.last && b.first <= a.last) {
        return fmt::format("--port-map '{}' and '{}' share ports", proto::printable(b.text), proto::printable(a.text));
      }
    }
  }
  if (total > max_mapped_ports) {
    return fmt::format("--port-map: {} ports in all; at most {} (one listening socket each)", total, max_mapped_ports);
  }
  return {};
}

}  // namespace exitpool::gateway
