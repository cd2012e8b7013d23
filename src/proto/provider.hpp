#pragma once
// Provider gateway lines: one upstream endpoint of a proxy provider (Bright Data, Oxylabs,
// ...) whose username or password carries the targeting (country, city, session id,
// session lifetime) in the provider's own grammar. Pure: templates are compiled once when
// the pool file is parsed and rendered per virtual exit (pool/elastic.hpp) into one
// string with one reservation: no formatting library on that path.
//
// A template is text with placeholders:
//   {NAME[:STYLE][|FALLBACK]}
//   NAME      user pass country state city asn session sesstime
//   STYLE     country: upper (US), uk (ISO gb written uk, as NetNut does)
//             city: compact (newyork), plus (new+york); default keeps '_' (new_york)
//             session: 8 (8 characters), digits (1..99999999); default 12 characters
//             (0-9 and a-v: base 32 of the session number)
//             sesstime: seconds (600), m (10m); default minutes (10)
//   FALLBACK  the value when the request leaves the placeholder unfilled ("any")
// The literal text before a placeholder (since the previous one) is its key: an unfilled
// placeholder without a fallback is dropped together with its key, so
// "{user}-country-{country}-session-{session}" renders as "acme-session-x1" when no
// country is asked. `user` and `pass` are the line's own credentials (always filled).
//
// Presets (proto::preset_names) are such templates with their documented conventions;
// README.md "Provider gateways" names the page and date each follows.
//
// Any thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exitpool::proto {

enum class placeholder : std::uint8_t { user, pass, country, state, city, asn, session, sesstime };
inline constexpr std::size_t placeholder_count = 8;
const char* placeholder_name(placeholder p);

enum class value_style : std::uint8_t {
  plain,      // as the client sent it (lower case; '_' for spaces in city names)
  upper,      // country: upper case
  uk,         // country: gb written uk
  compact,    // city: without '_', '-' and '+'
  plus,       // city: '_' written '+'
  alnum8,     // session: 8 characters
  digits,     // session: decimal 1..99999999
  seconds,    // sesstime: in seconds
  minutes_m,  // sesstime: minutes with an 'm' suffix
};

struct template_part {
  std::string key;  // literal text before the placeholder (or the trailing text)
  bool has_placeholder = false;
  placeholder name = placeholder::user;
  value_style style = value_style::plain;
  std::string fallback;  // non-empty: used when the placeholder is unfilled
};

struct credential_template {
  std::vector<template_part> parts;
  std::string source;  // the template text, for messages and comparisons
  std::size_t literal_bytes = 0;
  bool uses(placeholder p) const;
};

// Compiles `text`; the error names what is wrong (unknown placeholder, bad style, an
// unclosed brace, a ':' '@' '%' or control byte in the literal text).
struct template_result {
  std::optional<credential_template> tpl;
  std::string error;
};
template_result compile_template(std::string_view text);

// What a virtual exit's credentials are made of. Empty views are unfilled.
struct render_input {
  std::string_view user;
  std::string_view pass;
  std::string_view country;
  std::string_view state;
  std::string_view city;
  std::string_view asn;
  std::uint64_t session = 0;  // the provider session number (pool/elastic.hpp)
  bool has_session = true;
  int sesstime_minutes = 0;  // 0: unfilled (no client session)
};
// Appends the rendered template to `out` (one reservation).
void render(const credential_template& t, const render_input& in, std::string& out);

// The 12 characters (base 32, 0-9a-v) of a provider session number (virtual exit ids use it).
void session_token(std::uint64_t session, std::string& out);

// What a provider line is and can serve. Shared by the line's spec and its virtual exits.
struct provider_line {
  std::string preset;  // "" for custom templates
  credential_template user_tpl;
  credential_template pass_tpl;
  bool any_country = false;
  std::vector<std::string> countries;  // lower case
  bool any_city = false;
  std::vector<std::string> cities;  // lower case
  bool rotate = true;               // a fresh provider session per connection / request
  double rate = 0;                  // rate= : requests per second for the whole line (0: none)
  int max_sessions = 0;             // max_sessions= : leases in flight on the whole line (0: none)
  std::string source;               // the line's provider keys, canonical (reload comparisons)

  bool uses(placeholder p) const { return user_tpl.uses(p) || pass_tpl.uses(p); }
  // Whether a request with these values can go through this line (empty: not asked).
  bool serves(std::string_view country, std::string_view city, std::string_view state, std::string_view asn) const;
};

// The preset names, in documentation order.
const std::vector<std::string_view>& preset_names();
// The user and pass templates of a preset; nullopt for an unknown name.
struct preset_templates {
  std::string_view user;
  std::string_view pass;
};
std::optional<preset_templates> find_preset(std::string_view name);

// Builds a provider line from the pool line's keys (values as written). Returns the
// error text for the pool file's "FILE:LINE: " prefix on failure.
struct provider_keys {
  std::string_view provider;
  std::string_view user_template;
  std::string_view pass_template;
  std::string_view countries;
  std::string_view cities;
  std::string_view rotate;
  std::string_view rate;
  std::string_view max_sessions;
};
struct provider_result {
  std::shared_ptr<const provider_line> line;
  std::string error;
};
provider_result make_provider_line(const provider_keys& keys, std::string_view user, std::string_view pass);

}  // namespace exitpool::proto
