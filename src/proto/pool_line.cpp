#include "proto/pool_line.hpp"
#include "proto/text.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

namespace exitpool::proto {
namespace {

constexpr bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
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

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) {
      return std::nullopt;
    }
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
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

  bool parse_port(std::string_view text, std::string_view whole, std::uint16_t& port) {
    if (text.empty()) {
      return fail(fmt::format("missing port in '{}'", whole));
    }
    if (text.size() > 10) {
      return fail(fmt::format("port {} out of range", text));
    }
    unsigned long value = 0;
    for (char c : text) {
      if (!is_digit(c)) {
        return fail(fmt::format("bad port '{}' in '{}'", text, whole));
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
  bool parse_host_port(std::string_view hp, std::string_view whole, exit_spec& spec) {
    std::string_view host;
    std::string_view after;
    if (!hp.empty() && hp.front() == '[') {
      const auto close = hp.find(']');
      if (close == std::string_view::npos) {
        return fail(fmt::format("unterminated '[' in '{}'", whole));
      }
      host = hp.substr(1, close - 1);
      if (!valid_ipv6(host)) {
        return fail(fmt::format("bad IPv6 address '{}'", host));
      }
      after = hp.substr(close + 1);
      if (after.empty()) {
        return fail(fmt::format("missing port in '{}'", whole));
      }
      if (after.front() != ':') {
        return fail(fmt::format("unexpected '{}' after ']' in '{}'", after, whole));
      }
      after.remove_prefix(1);
    } else {
      const auto colon = hp.find(':');
      if (colon != std::string_view::npos && hp.find(':', colon + 1) != std::string_view::npos) {
        return fail(fmt::format("IPv6 addresses need brackets: '{}'", whole));
      }
      host = hp.substr(0, colon);
      if (host.empty()) {
        return fail(fmt::format("missing host in '{}'", whole));
      }
      if (colon == std::string_view::npos) {
        return fail(fmt::format("missing port in '{}'", whole));
      }
      after = hp.substr(colon + 1);
      if (!valid_hostname(host)) {
        return fail(fmt::format("bad host '{}'", host));
      }
    }
    spec.host = std::string(host);
    return parse_port(after, whole, spec.port);
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
      if (close + 1 != rest.size()) {
        return fail(fmt::format("direct exits take no port or credentials: '{}'", whole));
      }
      const std::string_view addr = rest.substr(1, close - 1);
      if (!valid_ipv6(addr)) {
        return fail(fmt::format("bad IPv6 address '{}'", addr));
      }
      spec.host = std::string(addr);
      return true;
    }
    if (valid_ipv4(rest) || valid_ipv6(rest)) {
      spec.host = std::string(rest);
      return true;
    }
    if (rest.find(':') != std::string_view::npos) {
      return fail(fmt::format("direct exits take no port or credentials: '{}'", whole));
    }
    if (rest.find('/') != std::string_view::npos) {
      return fail(fmt::format("unexpected path in '{}'", whole));
    }
    return fail(fmt::format("direct source must be an IP address, not '{}'", rest));
  }

  bool parse_url(std::string_view url, exit_spec& spec) {
    const auto sep = url.find("://");
    std::string_view rest = url.substr(sep + 3);
    // The last '@' ends the userinfo: an unencoded '@' in a password still parses.
    // Messages quote `shown`, the URL with its password masked.
    const auto at = rest.rfind('@');
    const std::string shown = at == std::string_view::npos ? std::string(url) : redact_text(url, at);
    const std::string scheme = lower(url.substr(0, sep));
    if (scheme == "http") {
      spec.scheme = exit_scheme::http;
    } else if (scheme == "https") {
      spec.scheme = exit_scheme::https;
    } else if (scheme == "socks5") {
      spec.scheme = exit_scheme::socks5;
    } else if (scheme == "socks5h") {
      spec.scheme = exit_scheme::socks5h;
    } else if (scheme == "direct") {
      spec.scheme = exit_scheme::direct;
    } else if (scheme.empty()) {
      return fail(fmt::format("missing scheme in '{}'", shown));
    } else {
      return fail(fmt::format("unknown scheme '{}'", url.substr(0, sep)));
    }
    if (spec.scheme == exit_scheme::direct) {
      return parse_direct(rest, url, spec);
    }
    if (at != std::string_view::npos) {
      const std::string_view userinfo = rest.substr(0, at);
      const auto colon = userinfo.find(':');
      const auto user = percent_decode(userinfo.substr(0, colon));
      if (!user) {
        return fail(fmt::format("bad percent-encoding in user of '{}'", shown));
      }
      if (user->empty()) {
        return fail(fmt::format("empty user in '{}'", shown));
      }
      spec.user = *user;
      if (colon != std::string_view::npos) {
        const auto pass = percent_decode(userinfo.substr(colon + 1));
        if (!pass) {
          return fail(fmt::format("bad percent-encoding in password of '{}'", shown));
        }
        spec.pass = *pass;
      }
      rest = rest.substr(at + 1);
    }
    // One trailing slash is tolerated ("http://host:8080/"); any other path is not.
    const auto slash = rest.find('/');
    if (slash != std::string_view::npos) {
      if (slash + 1 != rest.size()) {
        return fail(fmt::format("unexpected path '{}' in '{}'", rest.substr(slash), shown));
      }
      rest.remove_suffix(1);
    }
    if (rest.find_first_of("?#") != std::string_view::npos) {
      return fail(fmt::format("unexpected query or fragment in '{}'", shown));
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
    spec.host = std::string(host);
    const auto c1 = rest.find(':');
    const std::string_view host_port = text.substr(0, text.size() - rest.size() + std::min(c1, rest.size()));
    if (!parse_port(rest.substr(0, c1), host_port, spec.port)) {
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
    spec.user = std::string(creds.substr(0, c2));
    spec.pass = std::string(creds.substr(c2 + 1));
    return true;
  }

  // Known keys seen on this line, one bit each (a line is parsed a million times in a
  // big pool: no per-line map). Other keys are checked against the tags so far.
  enum seen_bit : unsigned { seen_id = 1, seen_country = 2, seen_city = 4, seen_type = 8, seen_weight = 16,
                             seen_tls = 32 };
  static unsigned key_bit(std::string_view key) {
    return key == "id"           ? seen_id
           : key == "country"    ? seen_country
           : key == "city"       ? seen_city
           : key == "type"       ? seen_type
           : key == "weight"     ? seen_weight
           : key == "tls_verify" ? seen_tls
                                 : 0u;
  }

  bool parse_option(std::string_view token, exit_spec& spec, unsigned& seen) {
    const auto eq = token.find('=');
    if (eq == std::string_view::npos) {
      if (lower(token) == "insecure") {
        if (seen & seen_tls) {
          return fail("duplicate key 'tls_verify'");
        }
        seen |= seen_tls;
        spec.tls_verify = false;
        return true;
      }
      return fail(fmt::format("expected key=value, got '{}'", token));
    }
    const std::string key = lower(token.substr(0, eq));
    const std::string_view value = token.substr(eq + 1);
    if (key.empty()) {
      return fail(fmt::format("missing key in '{}'", token));
    }
    if (value.empty()) {
      return fail(fmt::format("empty value for '{}'", key));
    }
    const unsigned bit = key_bit(key);
    const bool duplicate = bit != 0 ? (seen & bit) != 0
                                    : std::any_of(spec.tags.begin(), spec.tags.end(),
                                                  [&](const auto& t) { return t.first == key; });
    if (duplicate) {
      return fail(fmt::format("duplicate key '{}'", key));
    }
    seen |= bit;
    if (key == "id") {
      spec.id = std::string(value);
    } else if (key == "country") {
      spec.country = lower(value);
    } else if (key == "city") {
      spec.city = lower(value);
    } else if (key == "type") {
      spec.type = lower(value);
    } else if (key == "weight") {
      double w = 0;
      const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), w);
      if (ec != std::errc{} || p != value.data() + value.size() || !std::isfinite(w) || w <= 0) {
        return fail(fmt::format("bad weight '{}' (want a number > 0)", value));
      }
      spec.weight = w;
    } else if (key == "tls_verify") {
      const std::string v = lower(value);
      if (v == "true" || v == "1" || v == "yes") {
        spec.tls_verify = true;
      } else if (v == "false" || v == "0" || v == "no") {
        spec.tls_verify = false;
      } else {
        return fail(fmt::format("bad tls_verify '{}' (want true or false)", value));
      }
    } else {
      spec.tags.emplace_back(key, std::string(value));
    }
    return true;
  }
};

// Strips a '#' comment: at the start of the line or after whitespace ('#' inside a token stays).
std::string_view strip_comment(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || is_space(line[i - 1]))) {
      return line.substr(0, i);
    }
  }
  return line;
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) {
      ++i;
    }
    const std::size_t start = i;
    while (i < s.size() && !is_space(s[i])) {
      ++i;
    }
    if (i > start) {
      words.push_back(s.substr(start, i - start));
    }
  }
  return words;
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
    return out + host_text(spec.host);
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

pool_line_result parse_pool_line(std::string_view line) {
  pool_line_result result;
  const auto words = split_words(strip_comment(line));
  if (words.empty()) {
    return result;
  }
  line_parser p;
  exit_spec spec;
  const std::string_view first = words.front();
  const bool ok = first.find("://") != std::string_view::npos ? p.parse_url(first, spec) : p.parse_vendor(first, spec);
  if (!ok) {
    result.error = std::move(p.error);
    return result;
  }
  unsigned seen = 0;
  for (std::size_t i = 1; i < words.size(); ++i) {
    if (!p.parse_option(words[i], spec, seen)) {
      result.error = std::move(p.error);
      return result;
    }
  }
  if ((seen & line_parser::seen_tls) && spec.scheme != exit_scheme::https) {
    result.error = fmt::format("tls_verify/insecure applies only to https exits, not {}", scheme_name(spec.scheme));
    return result;
  }
  if (spec.id.empty()) {
    spec.id = default_exit_id(spec);
  }
  result.spec = std::move(spec);
  return result;
}

std::vector<exit_spec> parse_pool_text(std::string_view text, std::string_view filename) {
  std::vector<exit_spec> exits;
  std::unordered_map<std::string, std::size_t> id_lines;  // id -> first line
  id_lines.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    const std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    auto r = parse_pool_line(line);
    if (!r.error.empty()) {
      throw pool_error(fmt::format("{}:{}: {}", filename, line_no, r.error));
    }
    if (!r.spec) {
      continue;
    }
    r.spec->line = line_no;
    const auto [it, inserted] = id_lines.emplace(r.spec->id, line_no);
    if (!inserted) {
      throw pool_error(fmt::format("{}:{}: duplicate id '{}' (first on line {})", filename, line_no, r.spec->id,
                                   it->second));
    }
    exits.push_back(std::move(*r.spec));
  }
  if (exits.empty()) {
    throw pool_error(fmt::format("{}:{}: no exits in pool file", filename, line_no == 0 ? 1 : line_no));
  }
  return exits;
}

}  // namespace exitpool::proto
