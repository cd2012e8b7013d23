#include "crawl/url_norm.hpp"

#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <boost/url/url_view.hpp>

#include "proto/text.hpp"

namespace exitpool::crawl {

namespace {

bool is_hex(char c) {
  return proto::hex_value(c) >= 0;
}

// What a browser does before parsing an href: ASCII whitespace trimmed at both ends, tabs
// and newlines dropped anywhere, and bytes a URL may not hold percent-encoded (so
// "a b.html" and UTF-8 paths parse, as they do in a browser's address bar).
std::string clean_reference(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; };
  while (!s.empty() && space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && space(s.back())) {
    s.remove_suffix(1);
  }
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\t' || c == '\n' || c == '\r') {
      continue;
    }
    const bool bad = c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' ||
                     c == '{' || c == '|' || c == '}' ||
                     (c == '%' && !(i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2])));
    if (bad) {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::optional<std::string> finish(boost::urls::url& u, const normalize_options& o) {
  if (u.scheme_id() != boost::urls::scheme::http && u.scheme_id() != boost::urls::scheme::https) {
    return std::nullopt;
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    return std::nullopt;
  }
  if (u.encoded_path().empty()) {
    u.set_encoded_path("/");
  }
  u.normalize();
  u.remove_fragment();
  u.remove_userinfo();
  // Host names are case-insensitive (normalize() leaves their letters alone).
  std::string host(u.encoded_host());
  std::transform(host.begin(), host.end(), host.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
  if (host != u.encoded_host()) {
    u.set_encoded_host(host);
  }
  if (u.has_port()) {
    const auto port = u.port();
    const bool https = u.scheme_id() == boost::urls::scheme::https;
    if (port.empty() || (!https && port == "80") || (https && port == "443")) {
      u.remove_port();
    }
  }
  if (o.strip_query) {
    u.remove_query();
  } else if (u.has_query() && !o.strip_params.empty()) {
    auto params = u.params();
    for (auto it = params.begin(); it != params.end();) {
      const auto key = (*it).key;
      if (std::find(o.strip_params.begin(), o.strip_params.end(), key) != o.strip_params.end()) {
        it = params.erase(it);
      } else {
        ++it;
      }
    }
    if (u.encoded_query().empty()) {
      u.remove_query();
    }
  }
  if (u.buffer().size() > o.max_length) {
    return std::nullopt;
  }
  return std::string(u.buffer());
}

}  // namespace

std::optional<std::string> resolve_url(std::string_view base, std::string_view href, const normalize_options& o) {
  const std::string ref_text = clean_reference(href);
  if (ref_text.size() > o.max_length * 2) {
    return std::nullopt;
  }
  auto ref = boost::urls::parse_uri_reference(ref_text);
  auto b = boost::urls::parse_uri(base);
  if (!ref || !b) {
    return std::nullopt;
  }
  boost::urls::url dest;
  if (!boost::urls::resolve(*b, *ref, dest)) {
    return std::nullopt;
  }
  return finish(dest, o);
}

std::optional<std::string> normalize_url(std::string_view url, const normalize_options& o) {
  const std::string text = clean_reference(url);
  auto v = boost::urls::parse_uri(text);
  if (!v) {
    return std::nullopt;
  }
  // Resolving the URL against itself removes its dot segments (RFC 3986 5.2.2).
  boost::urls::url dest;
  if (!boost::urls::resolve(*v, *v, dest)) {
    return std::nullopt;
  }
  return finish(dest, o);
}

url_key split_url(std::string_view u) {
  url_key k;
  const auto colon = u.find("://");
  if (colon == std::string_view::npos) {
    return k;
  }
  k.scheme = u.substr(0, colon);
  const auto auth_start = colon + 3;
  auto path_start = u.find_first_of("/?", auth_start);
  if (path_start == std::string_view::npos) {
    path_start = u.size();
  }
  k.authority = u.substr(auth_start, path_start - auth_start);
  k.path_query = u.substr(path_start);
  k.host = k.authority;
  if (!k.host.empty() && k.host.front() == '[') {
    k.host = k.host.substr(0, k.host.find(']') + 1);
  } else if (const auto p = k.host.rfind(':'); p != std::string_view::npos) {
    k.host = k.host.substr(0, p);
  }
  return k;
}

}  // namespace exitpool::crawl
