#include "proto/pool_line.hpp"

// Why one file over 600 lines: one grammar (a pool line: URL, key=value options, provider
// keys) and its only caller, the whole-file parser that splits a big file into chunks parsed
// on several threads. The helpers at the top are the grammar's character classes; fuzzed by
// fuzz_pool_line.

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <system_error>
#include <thread>

#include "proto/ipv6_prefix.hpp"
#include "proto/socks5.hpp"
#include "proto/text.hpp"

namespace exitpool::proto {
namespace {

constexpr bool is_space(char c) {
  // ' ' and \t \n \v \f \r (9..13) in one comparison each.
  return c == ' ' || static_cast<unsigned char>(c - '\t') <= '\r' - '\t';
}
constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c);
}

bool valid_hostname(std::string_view s) {
  if (s.empty() || s.size() > 253) {
    return false;
  }
  for (char c : s) {
    if (!is_alnum(c) && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

constexpr char lower_char(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// ASCII case-insensitive equality; `want` is lower-case.
constexpr bool iequals(std::string_view have, std::string_view want) {
  if (have.size() != want.size()) {
    return false;
  }
  for (std::size_t i = 0; i < have.size(); ++i) {
    if (lower_char(have[i]) != want[i]) {
      return false;
    }
  }
  return true;
}

// out = lower-case copy of s, reusing out's buffer (no allocation for short values).
void assign_lower(std::string& out, std::string_view s) {
  out.assign(s);
  for (char& c : out) {
    c = lower_char(c);
  }
}

// Percent-decodes `s` into `out`; false on a malformed escape. A value without '%'
// (the usual case) is a plain copy.
bool percent_decode(std::string_view s, std::string& out) {
  const auto first = s.find('%');
  if (first == std::string_view::npos) {
    out.assign(s);
    return true;
  }
  out.assign(s.substr(0, first));
  for (std::size_t i = first; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) {
      return false;
    }
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// host:port:user:pass up to the password (before the third ':'), for messages.
std::string_view before_password(std::string_view text) {
  std::size_t end = 0;
  for (int colons = 0; colons < 3 && end != std::string_view::npos; ++colons) {
    end = text.find(':', colons == 0 ? 0 : end + 1);
  }
  return text.substr(0, end);
}

// Parsing state for one line; `fail` records the first error.
struct line_parser {
  std::string error;

  bool fail(std::string msg) {
    if (error.empty()) {
      error = std::move(msg);
    }
    return false;
  }

  // `whole()` gives the text that messages quote; it is called only on error.
  template <class Whole>
  bool parse_port(std::string_view text, const Whole& whole, std::uint16_t& port) {
    if (text.empty()) {
      return fail(fmt::format("missing port in '{}'", whole()));
    }
    if (text.size() > 10) {
      return fail(fmt::format("port {} out of range", text));
    }
    unsigned long value = 0;
    for (char c : text) {
      if (!is_digit(c)) {
        return fail(fmt::format("bad port '{}' in '{}'", text, whole()));
      }
      value = value * 10 + static_cast<unsigned long>(c - '0');
    }
    if (value == 0 || value > 65535) {
      return fail(fmt::format("port {} out of range", text));
    }
    port = static_cast<std::uint16_t>(value);
    return true;
  }

  // "host:port" or "[v6]:port" → host (brackets removed), the remainder after the port.
  template <class Whole>
  bool parse_host_port(std::string_view hp, const Whole& whole, exit_spec& spec) {
    std::string_view host;
    std::string_view after;
    if (!hp.empty() && hp.front() == '[') {
      const auto close = hp.find(']');
      if (close == std::string_view::npos) {
        return fail(fmt::format("unterminated '[' in '{}'", whole()));
      }
      host = hp.substr(1, close - 1);
      if (!valid_ipv6(host)) {
        return fail(fmt::format("bad IPv6 address '{}'", host));
      }
      after = hp.substr(close + 1);
      if (after.empty()) {
        return fail(fmt::format("missing port in '{}'", whole()));
      }
      if (after.front() != ':') {
        return fail(fmt::format("unexpected '{}' after ']' in '{}'", after, whole()));
      }
      after.remove_prefix(1);
    } else {
      const auto colon = hp.find(':');
      if (colon != std::string_view::npos && hp.find(':', colon + 1) != std::string_view::npos) {
        return fail(fmt::format("IPv6 addresses need brackets: '{}'", whole()));
      }
      host = hp.substr(0, colon);
      if (host.empty()) {
        return fail(fmt::format("missing host in '{}'", whole()));
      }
      if (colon == std::string_view::npos) {
        return fail(fmt::format("missing port in '{}'", whole()));
      }
      after = hp.substr(colon + 1);
      if (!valid_hostname(host)) {
        return fail(fmt::format("bad host '{}'", host));
      }
    }
    spec.host.assign(host);
    return parse_port(after, whole, spec.port);
  }

  // direct://[ADDR]/LEN: the prefix's network address (canonical text) and its length.
  bool parse_prefix(std::string_view addr, std::string_view length, exit_spec& spec) {
    auto parsed = parse_ipv6_prefix(addr, length);
    if (!parsed.prefix) {
      return fail(std::move(parsed.error));
    }
    spec.host = format_ipv6(parsed.prefix->network);
    spec.prefix_len = parsed.prefix->length;
    return true;
  }

  bool parse_direct(std::string_view rest, std::string_view whole, exit_spec& spec) {
    if (rest.empty()) {
      return true;
    }
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
      return fail(fmt::format("direct exits take no port or credentials: 'direct://***{}'", rest.substr(at)));
    }
    if (rest.front() == '[') {
      const auto close = rest.find(']');
      if (close == std::string_view::npos) {
        return fail(fmt::format("unterminated '[' in '{}'", whole));
      }
      const std::string_view addr = rest.substr(1, close - 1);
      if (close + 1 < rest.size() && rest[close + 1] == '/') {
        return parse_prefix(addr, rest.substr(close + 2), spec);
      }
      if (close + 1 != rest.size()) {
        return fail(fmt::format("direct exits take no port or credentials: '{}'", whole));
      }
      if (!valid_ipv6(addr)) {
        return fail(fmt::format("bad IPv6 address '{}'", addr));
      }
      spec.host.assign(addr);
      return true;
    }
    if (valid_ipv4(rest) || valid_ipv6(rest)) {
      spec.host.assign(rest);
      return true;
    }
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
      const std::string_view addr = rest.substr(0, slash);
      if (valid_ipv6(addr)) {
        return parse_prefix(addr, rest.substr(slash + 1), spec);
      }
      if (valid_ipv4(addr)) {
        return fail(fmt::format("only IPv6 prefixes can be direct exits, not '{}'", rest));
      }
      return fail(fmt::format("unexpected path in '{}'", whole));
    }
    if (rest.find(':') != std::string_view::npos) {
      return fail(fmt::format("direct exits take no port or credentials: '{}'", whole));
    }
    return fail(fmt::format("direct source must be an IP address, not '{}'", rest));
  }

  bool parse_url(std::string_view url, exit_spec& spec) {
    const auto sep = url.find("://");
    std::string_view rest = url.substr(sep + 3);
    // The last '@' ends the userinfo: an unencoded '@' in a password still parses.
    // Messages quote shown(), the URL with its password masked (built only on error).
    const auto at = rest.rfind('@');
    const auto shown = [&] { return at == std::string_view::npos ? std::string(url) : redact_text(url, at); };
    const std::string_view scheme = url.substr(0, sep);
    if (iequals(scheme, "http")) {
      spec.scheme = exit_scheme::http;
    } else if (iequals(scheme, "https")) {
      spec.scheme = exit_scheme::https;
    } else if (iequals(scheme, "socks5")) {
      spec.scheme = exit_scheme::socks5;
    } else if (iequals(scheme, "socks5h")) {
      spec.scheme = exit_scheme::socks5h;
    } else if (iequals(scheme, "direct")) {
      spec.scheme = exit_scheme::direct;
    } else if (scheme.empty()) {
      return fail(fmt::format("missing scheme in '{}'", shown()));
    } else {
      return fail(fmt::format("unknown scheme '{}'", scheme));
    }
    if (spec.scheme == exit_scheme::direct) {
      return parse_direct(rest, url, spec);
    }
    if (at != std::string_view::npos) {
      const std::string_view userinfo = rest.substr(0, at);
      const auto colon = userinfo.find(':');
      if (!percent_decode(userinfo.substr(0, colon), spec.user)) {
        return fail(fmt::format("bad percent-encoding in user of '{}'", shown()));
      }
      if (spec.user.empty()) {
        return fail(fmt::format("empty user in '{}'", shown()));
      }
      if (colon != std::string_view::npos) {
        if (!percent_decode(userinfo.substr(colon + 1), spec.pass)) {
          return fail(fmt::format("bad percent-encoding in password of '{}'", shown()));
        }
      }
      rest = rest.substr(at + 1);
    }
    // One trailing slash is tolerated ("http://host:8080/"); any other path is not.
    const auto slash = rest.find('/');
    if (slash != std::string_view::npos) {
      if (slash + 1 != rest.size()) {
        return fail(fmt::format("unexpected path '{}' in '{}'", rest.substr(slash), shown()));
      }
      rest.remove_suffix(1);
    }
    if (rest.find('?') != std::string_view::npos || rest.find('#') != std::string_view::npos) {
      return fail(fmt::format("unexpected query or fragment in '{}'", shown()));
    }
    return parse_host_port(rest, shown, spec);
  }

  // The URL with the password (between the userinfo's first ':' and the '@') masked.
  static std::string redact_text(std::string_view url, std::size_t at_in_rest) {
    const auto sep = url.find("://");
    const std::size_t start = sep + 3;
    const std::size_t at = start + at_in_rest;
    const auto colon = url.substr(start, at - start).find(':');
    if (colon == std::string_view::npos) {
      return std::string(url);
    }
    return fmt::format("{}***{}", url.substr(0, start + colon + 1), url.substr(at));
  }

  // host:port[:user:pass] (user and pass taken literally; pass may contain ':').
  bool parse_vendor(std::string_view text, exit_spec& spec) {
    spec.scheme = exit_scheme::http;
    std::string_view host;
    std::string_view rest;
    if (!text.empty() && text.front() == '[') {
      // Messages quote the text only up to the port: user and password may follow it.
      const auto close = text.find(']');
      if (close == std::string_view::npos) {
        return fail("unterminated '[' in host:port:user:pass entry");
      }
      host = text.substr(1, close - 1);
      if (!valid_ipv6(host)) {
        return fail(fmt::format("bad IPv6 address '{}'", host));
      }
      rest = text.substr(close + 1);
      if (rest.empty()) {
        return fail(fmt::format("missing port in '{}'", text));
      }
      if (rest.front() != ':') {
        return fail(fmt::format("unexpected '{}' after ']' in '{}'", rest.substr(0, rest.find(':')),
                                text.substr(0, close + 1)));
      }
      rest.remove_prefix(1);
    } else {
      const auto colon = text.find(':');
      host = text.substr(0, colon);
      if (host.empty()) {
        return fail(fmt::format("missing host in '{}'", before_password(text)));
      }
      if (colon == std::string_view::npos) {
        return fail(fmt::format("missing port in '{}' (expected host:port or scheme://host:port)", text));
      }
      if (!valid_hostname(host)) {
        return fail(fmt::format("bad host '{}'", host));
      }
      rest = text.substr(colon + 1);
    }
    spec.host.assign(host);
    const auto c1 = rest.find(':');
    const std::string_view host_port = text.substr(0, text.size() - rest.size() + std::min(c1, rest.size()));
    if (!parse_port(
            rest.substr(0, c1), [host_port] { return host_port; }, spec.port)) {
      return false;
    }
    if (c1 == std::string_view::npos) {
      return true;
    }
    const std::string_view creds = rest.substr(c1 + 1);
    const auto c2 = creds.find(':');
    if (c2 == std::string_view::npos) {
      return fail(fmt::format("expected host:port:user:pass, got '{}:...'", host_port));
    }
    if (c2 == 0) {
      return fail("empty user in host:port:user:pass");
    }
    spec.user.assign(creds.substr(0, c2));
    spec.pass.assign(creds.substr(c2 + 1));
    return true;
  }

  // Known keys seen on this line, one bit each (a line is parsed a million times in a
  // big pool: no per-line map). Other keys are checked against the tags so far.
  enum seen_bit : unsigned {
    seen_id = 1,
    seen_country = 2,
    seen_city = 4,
    seen_type = 8,
    seen_weight = 16,
    seen_tls = 32
  };
  // Compares case-insensitively: no lower-cased copy of the key on the happy path.
  static unsigned key_bit(std::string_view key) {
    return iequals(key, "id")           ? seen_id
           : iequals(key, "country")    ? seen_country
           : iequals(key, "city")       ? seen_city
           : iequals(key, "type")       ? seen_type
           : iequals(key, "weight")     ? seen_weight
           : iequals(key, "tls_verify") ? seen_tls
                                        : 0u;
  }

  bool parse_option(std::string_view token, exit_spec& spec, unsigned& seen) {
    const auto eq = token.find('=');
    if (eq == std::string_view::npos) {
      if (iequals(token, "insecure")) {
        if (seen & seen_tls) {
          return fail("duplicate key 'tls_verify'");
        }
        seen |= seen_tls;
        spec.tls_verify = false;
        return true;
      }
      return fail(fmt::format("expected key=value, got '{}'", token));
    }
    const std::string_view key = token.substr(0, eq);
    const std::string_view value = token.substr(eq + 1);
    if (key.empty()) {
      return fail(fmt::format("missing key in '{}'", token));
    }
    if (value.empty()) {
      return fail(fmt::format("empty value for '{}'", lower(key)));
    }
    const unsigned bit = key_bit(key);
    const bool duplicate = bit != 0 ? (seen & bit) != 0
                                    : std::any_of(spec.tags.begin(), spec.tags.end(),
                                                  [&](const auto& t) { return iequals(key, t.first); });
    if (duplicate) {
      return fail(fmt::format("duplicate key '{}'", lower(key)));
    }
    seen |= bit;
    switch (bit) {
      case seen_id:
        spec.id.assign(value);
        break;
      case seen_country:
        assign_lower(spec.country, value);
        break;
      case seen_city:
        assign_lower(spec.city, value);
        break;
      case seen_type:
        assign_lower(spec.type, value);
        break;
      case seen_weight: {
        double w = 0;
        const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), w);
        if (ec != std::errc{} || p != value.data() + value.size() || !std::isfinite(w) || w <= 0) {
          return fail(fmt::format("bad weight '{}' (want a number > 0)", value));
        }
        spec.weight = w;
        break;
      }
      case seen_tls:
        if (iequals(value, "true") || iequals(value, "1") || iequals(value, "yes")) {
          spec.tls_verify = true;
        } else if (iequals(value, "false") || iequals(value, "0") || iequals(value, "no")) {
          spec.tls_verify = false;
        } else {
          return fail(fmt::format("bad tls_verify '{}' (want true or false)", value));
        }
        break;
      default:
        spec.tags.emplace_back(lower(key), std::string(value));
        break;
    }
    return true;
  }
};

// Strips a '#' comment: at the start of the line or after whitespace ('#' inside a token stays).
std::string_view strip_comment(std::string_view line) {
  for (auto i = line.find('#'); i != std::string_view::npos; i = line.find('#', i + 1)) {
    if (i == 0 || is_space(line[i - 1])) {
      return line.substr(0, i);
    }
  }
  return line;
}

// The next white-space separated word of `s` from `pos` (empty at the end); no vector per line.
std::string_view next_word(std::string_view s, std::size_t& pos) {
  while (pos < s.size() && is_space(s[pos])) {
    ++pos;
  }
  const std::size_t start = pos;
  while (pos < s.size() && !is_space(s[pos])) {
    ++pos;
  }
  return s.substr(start, pos - start);
}

}  // namespace

const char* scheme_name(exit_scheme s) {
  switch (s) {
    case exit_scheme::http:
      return "http";
    case exit_scheme::https:
      return "https";
    case exit_scheme::socks5:
      return "socks5";
    case exit_scheme::socks5h:
      return "socks5h";
    case exit_scheme::direct:
      return "direct";
  }
  return "unknown";
}

namespace {
std::string host_text(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}
}  // namespace

std::string default_exit_id(const exit_spec& spec) {
  if (spec.scheme == exit_scheme::direct) {
    if (spec.prefix_len > 0) {
      return fmt::format("direct:{}/{}", spec.host, spec.prefix_len);
    }
    return spec.host.empty() ? std::string("direct") : "direct:" + spec.host;
  }
  std::string id;
  if (!spec.user.empty()) {
    id = spec.user + "@";
  }
  return id + host_text(spec.host) + ":" + std::to_string(spec.port);
}

std::string redacted_url(const exit_spec& spec) {
  std::string out = std::string(scheme_name(spec.scheme)) + "://";
  if (spec.scheme == exit_scheme::direct) {
    out += host_text(spec.host);
    return spec.prefix_len > 0 ? fmt::format("{}/{}", out, spec.prefix_len) : out;
  }
  if (!spec.user.empty()) {
    out += spec.user;
    if (!spec.pass.empty()) {
      out += ":***";
    }
    out += "@";
  }
  return out + host_text(spec.host) + ":" + std::to_string(spec.port);
}

namespace {

enum class line_kind { blank, exit, error };

// A provider line's keys arrive as tags (parse_option keeps unknown keys): taken out of the
// tags here and made into spec.provider. False with `error` set when they are wrong.
bool take_provider_keys(exit_spec& spec, std::string& error) {
  provider_keys keys;
  const std::pair<std::string_view, std::string_view*> known[] = {{"provider", &keys.provider},
                                                                  {"user_template", &keys.user_template},
                                                                  {"pass_template", &keys.pass_template},
                                                                  {"countries", &keys.countries},
                                                                  {"cities", &keys.cities},
                                                                  {"rotate", &keys.rotate},
                                                                  {"rate", &keys.rate},
                                                                  {"max_sessions", &keys.max_sessions}};
  bool any = false;
  for (const auto& [key, value] : spec.tags) {
    for (const auto& [name, slot] : known) {
      if (key == name) {
        *slot = value;
        any = true;
      }
    }
  }
  if (!any) {
    return true;
  }
  if (keys.provider.empty() && keys.user_template.empty() && keys.pass_template.empty()) {
    error =
        "countries=, cities=, rotate=, rate= and max_sessions= belong to provider lines (provider= or "
        "user_template=/pass_template=)";
    return false;
  }
  if (spec.scheme == exit_scheme::direct) {
    error = "a provider line needs an http, https or socks5 gateway URL, not direct://";
    return false;
  }
  if (!spec.country.empty() || !spec.city.empty()) {
    error = "a provider line declares what it serves with countries= and cities=, not country= or city=";
    return false;
  }
  auto made = make_provider_line(keys, spec.user, spec.pass);
  if (!made.line) {
    error = std::move(made.error);
    return false;
  }
  spec.provider = std::move(made.line);
  std::erase_if(spec.tags, [&](const auto& t) {
    return std::any_of(std::begin(known), std::end(known), [&](const auto& k) { return t.first == k.first; });
  });
  return true;
}

// RFC 1929 carries a user name of 1..255 bytes and a password of 0..255: a SOCKS5 line
// whose credentials cannot be sent is refused here, not at every dial. A provider line's
// credentials are made per request (its templates add the client's options); the dialer
// refuses those that come out too long before reaching the exit, as the client's fault.
bool socks5_credentials_fit(const exit_spec& spec, std::string& error) {
  if (spec.scheme != exit_scheme::socks5 && spec.scheme != exit_scheme::socks5h) {
    return true;
  }
  const bool fit = spec.provider ? spec.user.size() <= 255 && spec.pass.size() <= 255
                                 : spec.user.empty() || socks5::encodable_userpass(spec.user, spec.pass);
  if (!fit) {
    error = fmt::format("SOCKS5 credentials are at most 255 bytes each (user: {} bytes, password: {})",
                        spec.user.size(), spec.pass.size());
  }
  return fit;
}

// One line into `spec` (default-initialised by the caller); on error, `error` says why.
line_kind parse_line_into(std::string_view line, exit_spec& spec, std::string& error) {
  const std::string_view text = strip_comment(line);
  std::size_t pos = 0;
  const std::string_view first = next_word(text, pos);
  if (first.empty()) {
    return line_kind::blank;
  }
  line_parser p;
  const bool ok = first.find("://") != std::string_view::npos ? p.parse_url(first, spec) : p.parse_vendor(first, spec);
  if (!ok) {
    error = std::move(p.error);
    return line_kind::error;
  }
  unsigned seen = 0;
  for (auto word = next_word(text, pos); !word.empty(); word = next_word(text, pos)) {
    if (!p.parse_option(word, spec, seen)) {
      error = std::move(p.error);
      return line_kind::error;
    }
  }
  if ((seen & line_parser::seen_tls) && spec.scheme != exit_scheme::https) {
    error = fmt::format("tls_verify/insecure applies only to https exits, not {}", scheme_name(spec.scheme));
    return line_kind::error;
  }
  if (!spec.tags.empty() && !take_provider_keys(spec, error)) {
    return line_kind::error;
  }
  if (!socks5_credentials_fit(spec, error)) {
    return line_kind::error;
  }
  if (spec.id.empty()) {
    spec.id = default_exit_id(spec);
  }
  return line_kind::exit;
}

// The exits of a run of whole lines, the first of them numbered `first_line`. Parsing
// stops at the first bad line: error_line (0 when none) and its message.
struct chunk_result {
  std::vector<exit_spec> exits;
  std::vector<std::size_t> id_hashes;  // of exits[i].id, for the duplicate check
  std::size_t error_line = 0;
  std::string error;
  std::exception_ptr failure;  // an exception (out of memory) from a worker thread
};

void parse_chunk(std::string_view text, std::size_t first_line, std::size_t reserve, chunk_result& out) {
  out.exits.reserve(reserve);
  out.id_hashes.reserve(reserve);
  std::size_t line_no = first_line;
  const char* pos = text.data();
  const char* const end = text.data() + text.size();
  for (; pos < end; ++line_no) {
    const auto* nl = static_cast<const char*>(std::memchr(pos, '\n', static_cast<std::size_t>(end - pos)));
    const char* line_end = nl == nullptr ? end : nl;
    const std::string_view line(pos, static_cast<std::size_t>(line_end - pos));
    pos = nl == nullptr ? end : nl + 1;
    exit_spec& spec = out.exits.emplace_back();
    const line_kind kind = parse_line_into(line, spec, out.error);
    if (kind == line_kind::exit) {
      spec.line = line_no;
      out.id_hashes.push_back(std::hash<std::string_view>{}(spec.id));
      continue;
    }
    out.exits.pop_back();
    if (kind == line_kind::error) {
      out.error_line = line_no;
      return;
    }
  }
}

// Newlines in `s`, eight bytes at a time (a pool file can be 100 MB).
std::size_t count_newlines(std::string_view s) {
  constexpr std::uint64_t ones = 0x0101010101010101u;
  constexpr std::uint64_t low7 = 0x7f7f7f7f7f7f7f7fu;
  std::size_t n = 0;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, 8);
    const std::uint64_t x = w ^ (ones * '\n');  // zero bytes where the newlines are
    const std::uint64_t zero_bytes = ~(((x & low7) + low7) | x | low7);
    // One bit per matching byte, at bit 7: move it to bit 0 and sum the bytes by multiplying.
    n += static_cast<std::size_t>(((zero_bytes >> 7) * ones) >> 56);
  }
  for (; i < s.size(); ++i) {
    n += s[i] == '\n' ? 1 : 0;
  }
  return n;
}

// Open addressing over exit indices for the duplicate-id check: a slot holds the upper
// 32 bits of the id's hash and index + 1 (0 = empty). Two slots per exit keep probes short.
class id_table {
 public:
  explicit id_table(std::size_t n)
      : slots_(std::bit_ceil(std::max<std::size_t>(16, n * 2))), mask_(slots_.size() - 1) {}

  void prefetch(std::size_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }

  // Adds exits[i] (its id hashing to `hash`); returns the index of an earlier exit with
  // the same id, or npos.
  std::size_t insert(const std::vector<exit_spec>& exits, std::size_t i, std::size_t hash) {
    const std::uint64_t tag = static_cast<std::uint64_t>(hash >> 32) << 32;
    for (std::size_t s = hash & mask_;; s = (s + 1) & mask_) {
      const std::uint64_t v = slots_[s];
      if (v == 0) {
        slots_[s] = tag | static_cast<std::uint64_t>(i + 1);
        return npos;
      }
      const std::size_t j = static_cast<std::size_t>(v & 0xffffffffu) - 1;
      if ((v & ~std::uint64_t{0xffffffffu}) == tag && exits[j].id == exits[i].id) {
        return j;
      }
    }
  }
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  std::vector<std::uint64_t> slots_;
  std::size_t mask_;
};

}  // namespace

pool_line_result parse_pool_line(std::string_view line) {
  pool_line_result result;
  exit_spec spec;
  if (parse_line_into(line, spec, result.error) == line_kind::exit) {
    result.spec = std::move(spec);
  }
  return result;
}

std::vector<exit_spec> parse_pool_text(std::string_view text, std::string_view filename, const parse_options& opts) {
  // Split at line boundaries into up to opts.threads chunks of at least min_bytes_per_thread;
  // chunk 0 is parsed here, the others on threads of their own.
  const std::size_t min_bytes = std::max<std::size_t>(1, opts.min_bytes_per_thread);
  const std::size_t n_chunks = std::clamp<std::size_t>(text.size() / min_bytes, 1, std::max(1u, opts.threads));
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  for (std::size_t k = 1; k < n_chunks && start < text.size(); ++k) {
    const std::size_t cut = std::max(start, text.size() * k / n_chunks);
    const auto nl = text.find('\n', cut);
    if (nl == std::string_view::npos) {
      break;
    }
    pieces.push_back(text.substr(start, nl + 1 - start));
    start = nl + 1;
  }
  pieces.push_back(text.substr(start));

  std::vector<std::size_t> first_line(pieces.size(), 1);
  std::vector<std::size_t> newlines(pieces.size(), 0);
  std::vector<chunk_result> chunks(pieces.size());
  {
    std::vector<std::thread> workers;
    auto work = [&](std::size_t k, std::size_t reserve) {
      try {
        parse_chunk(pieces[k], first_line[k], reserve, chunks[k]);
      } catch (...) {
        chunks[k].failure = std::current_exception();
      }
    };
    // Line numbers need the newlines before each piece; each piece's count also sizes its vector.
    for (std::size_t k = 0; k < pieces.size(); ++k) {
      newlines[k] = count_newlines(pieces[k]);
      if (k > 0) {
        first_line[k] = first_line[k - 1] + newlines[k - 1];
      }
    }
    const std::size_t total_lines = first_line.back() + newlines.back();
    for (std::size_t k = 1; k < pieces.size(); ++k) {
      try {
        workers.emplace_back(work, k, newlines[k] + 1);
      } catch (const std::system_error&) {
        work(k, newlines[k] + 1);  // no thread to be had: this piece on this thread
      }
    }
    // Chunk 0 keeps room for the others, so appending them does not reallocate.
    work(0, total_lines);
    for (auto& t : workers) {
      t.join();
    }
  }
  for (const auto& c : chunks) {
    if (c.failure) {
      std::rethrow_exception(c.failure);
    }
  }

  // Everything before the first bad line, in file order.
  std::vector<exit_spec> exits = std::move(chunks[0].exits);
  std::vector<std::size_t> hashes = std::move(chunks[0].id_hashes);
  std::size_t bad = chunks[0].error_line != 0 ? 0 : pieces.size();
  for (std::size_t k = 1; k < chunks.size() && bad == pieces.size(); ++k) {
    exits.reserve(exits.size() + chunks[k].exits.size());
    std::move(chunks[k].exits.begin(), chunks[k].exits.end(), std::back_inserter(exits));
    std::vector<exit_spec>().swap(chunks[k].exits);
    hashes.insert(hashes.end(), chunks[k].id_hashes.begin(), chunks[k].id_hashes.end());
    if (chunks[k].error_line != 0) {
      bad = k;
    }
  }

  // A duplicate id before the bad line is reported first, as a line-by-line reader would.
  // The table is far bigger than the caches: prefetch the slot a few exits ahead.
  constexpr std::size_t ahead = 16;
  id_table ids(exits.size());
  for (std::size_t i = 0; i < exits.size(); ++i) {
    if (i + ahead < hashes.size()) {
      ids.prefetch(hashes[i + ahead]);
    }
    const std::size_t first = ids.insert(exits, i, hashes[i]);
    if (first != id_table::npos) {
      throw pool_error(fmt::format("{}:{}: duplicate id '{}' (first on line {})", filename, exits[i].line, exits[i].id,
                                   exits[first].line));
    }
  }
  if (bad != pieces.size()) {
    throw pool_error(fmt::format("{}:{}: {}", filename, chunks[bad].error_line, chunks[bad].error));
  }
  if (exits.empty()) {
    const std::size_t lines = first_line.back() + newlines.back() - 1 + (!text.empty() && text.back() != '\n' ? 1 : 0);
    throw pool_error(fmt::format("{}:{}: no exits in pool file", filename, lines == 0 ? 1 : lines));
  }
  return exits;
}

}  // namespace exitpool::proto
