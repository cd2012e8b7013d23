#pragma once
// Who a client is: the credentials it presents (Basic in Proxy-Authorization for the
// HTTP fronts, RFC 1929 username/password for SOCKS5), checked against the users file,
// and the routing options it carries in them (proto/user_params.hpp: country, city,
// type, sticky session and its lifetime).
//
// Pure: no I/O, no Asio. Any thread: the users table is immutable after startup.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "proto/http_head.hpp"
#include "proto/user_params.hpp"

namespace exitpool::gateway {

struct credentials {
  std::string user;
  std::string password;
  bool operator==(const credentials&) const = default;
};

// user → password, from --users; empty: the gateway is open (no authentication).
using user_table = std::unordered_map<std::string, std::string>;

// The Basic credentials of a request's Proxy-Authorization header. nullopt when the
// header is absent. A header that is present but unusable (another scheme, bad base64)
// gives empty credentials, so it is refused rather than taken as "no credentials".
// Without a ':' the whole decoded text is the user and the password is empty.
std::optional<credentials> basic_credentials(const proto::request_head& head);

struct auth_result {
  std::optional<proto::route_params> params;  // set when the client is let in
  std::string error;                          // otherwise why (X-Exitpool-Error, logs)
};

// Checks `creds` against `users` and parses the options they carry. Without users,
// anyone is let in: no credentials give default options, credentials give their
// options (the user part is then the text before the first '-'). With users, the
// user must exist and the password match (compared in constant time).
auth_result authenticate(const user_table& users, const std::optional<credentials>& creds);

// The SOCKS5 method (RFC 1928 section 3) for a client offering `offered`: username/
// password whenever offered (options travel in the username), no authentication only
// when the gateway has no users, else none acceptable (0xff).
std::uint8_t choose_socks5_method(std::span<const std::uint8_t> offered, bool users_configured);

}  // namespace exitpool::gateway
