#pragma once
// Sticky ports (`--port-map 10001-10100:country=us`): extra listeners where each port
// is its own sticky session with the map's routing options, for clients that cannot
// put options in a proxy username (Chromium's SOCKS5 has no authentication; many
// automation tools). The session id is derived from the port ("port:10001"), so every
// shard and every gateway of a fleet give a port the same exit.
//
// Pure: no I/O, no Asio. Any thread: maps are immutable after startup.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/user_params.hpp"

namespace exitpool::gateway {

struct port_map {
  std::uint16_t first = 0;
  std::uint16_t last = 0;       // inclusive
  proto::route_params options;  // country, city, type, sesstime, sessbusy; no session, no user
  std::string text;             // as given, for messages
};

struct port_map_result {
  std::optional<port_map> map;  // set on success
  std::string error;            // otherwise why, naming the option
};

// Ports a map may span, all maps together (one listening socket each).
inline constexpr std::size_t max_mapped_ports = 10000;

// `PORT[-PORT][:KEY=VALUE[,KEY=VALUE]...]`, keys as in proxy usernames
// (proto/user_params.hpp): country|cc|region, city, type, sesstime, sessbusy. `session`
// is refused (the port is the session).
port_map_result parse_port_map(std::string_view text);

// The routing options of a connection that arrived on `port` of `m`.
proto::route_params port_session(const port_map& m, std::uint16_t port);

// "" when the maps are usable together: no port in two maps, none equal to `reserved`
// (the main listener, the admin endpoint), at most max_mapped_ports in all.
std::string check_port_maps(const std::vector<port_map>& maps, const std::vector<std::uint16_t>& reserved);

}  // namespace exitpool::gateway
