#pragma once
// Client options carried in proxy credentials, as commercial gateways do.
// Pure functions, no I/O.
//
// Username: USER[-key-value]...   e.g. alice-country-us-session-ab12-sesstime-30
// Password: PASS[_key-value]...   e.g. secret_country-us_session-ab12
// Keys (case-insensitive) and aliases:
//   country | cc | region      → country (lower-cased)
//   city                       → city (lower-cased)
//   type                       → type (lower-cased)
//   state | st                 → state or region inside the country (lower-cased)
//   asn                        → autonomous system number (lower-cased)
//   session | sessid           → session id (case kept)
//   sesstime | sessionduration → sticky lifetime in minutes (1..1440)
//   sessbusy                   → wait | move: when the session's exit is busy (rate
//                                limit, concurrency cap), wait for it or move to another
//   zone                       → accepted and ignored
// Any other key is an error ("unknown option 'x'").
//
// USER may contain '-': when `is_user` is given (a users file is configured), USER is
// the longest '-'-joined prefix for which is_user() is true; without it, USER is the
// text before the first '-'. The password carries options when every '_'-separated
// part after the first has the shape KEY-VALUE (KEY made of letters); those keys must
// be known (else an error). Otherwise the whole field is the password ("my_secret"). Options in both fields are merged;
// the same key with two different values is an error.
//
// Bounds (a client chooses these keys, and the gateway keeps some of them: the session
// table, the error texts): each field at most max_credential_bytes (RFC 1929's limit, so
// the same credentials work on the SOCKS5 and the HTTP fronts), each option value at
// most max_option_bytes. Longer is an error naming the limit. Error texts quote client
// text through proto::clip (escaped, cut).

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace exitpool::proto {

inline constexpr std::size_t max_credential_bytes = 255;
inline constexpr std::size_t max_option_bytes = 64;

struct route_params {
  std::string user;
  std::string password;
  std::string country;
  std::string city;
  std::string type;
  std::string session;
  std::optional<int> session_minutes;
  std::optional<bool> session_move_when_busy;  // sessbusy-move / sessbusy-wait
  std::string state;
  std::string asn;
};

struct params_result {
  std::optional<route_params> params;  // set on success
  std::string error;                   // set on failure, e.g. "unknown option 'colour' in username"
};

params_result parse_credentials(std::string_view username, std::string_view password,
                                const std::function<bool(std::string_view)>& is_user = {});

}  // namespace exitpool::proto
