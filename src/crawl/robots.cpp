#include "crawl/robots.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "fetch/input.hpp"
#include "proto/text.hpp"

namespace exitpool::crawl {

namespace {

using fetch::trim;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}

bool is_hex(char c) {
  return proto::hex_value(c) >= 0;
}

// A pattern in the URL normaliser's form: bytes outside printable ASCII percent-encoded,
// triplets upper-case (so "/caf%c3%a9" and "/café" both match the normalised "/caf%C3%A9").
std::string normalize_pattern(std::string_view p) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c <= 0x20 || c >= 0x7f) {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    } else if (c == '%' && i + 2 < p.size() && is_hex(p[i + 1]) && is_hex(p[i + 2])) {
      out += '%';
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(p[i + 1])));
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(p[i + 2])));
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

std::string_view product_token(std::string_view ua) {
  ua = trim(ua);
  const auto end = ua.find_first_of("/ \t");
  return end == std::string_view::npos ? ua : ua.substr(0, end);
}

bool robots_pattern_matches(std::string_view pattern, std::string_view path) {
  bool anchored = !pattern.empty() && pattern.back() == '$';
  if (anchored) {
    pattern.remove_suffix(1);
  }
  // Wildcard matching with one backtrack point (the last '*'): O(n * m) at worst, no
  // recursion, so hostile patterns cost time linear in their size per path byte.
  std::size_t p = 0, s = 0;
  std::size_t star_p = std::string_view::npos, star_s = 0;
  while (s < path.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_p = p++;
      star_s = s;
    } else if (p < pattern.size() && pattern[p] == path[s]) {
      ++p;
      ++s;
    } else if (p == pattern.size() && !anchored) {
      return true;  // the pattern matched a prefix
    } else if (star_p != std::string_view::npos) {
      p = star_p + 1;
      s = ++star_s;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

robots_rules robots_rules::parse(std::string_view text, std::string_view agent) {
  robots_rules out;
  if (text.size() > robots_max_bytes) {
    text = text.substr(0, robots_max_bytes);
    out.truncated_ = true;
  }
  // A UTF-8 byte order mark is allowed at the start.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    text.remove_prefix(3);
  }
  struct group_rules {
    std::vector<rule> rules;
    std::optional<double> delay;
  };
  group_rules ours, star;
  bool ours_seen = false, star_seen = false;
  bool in_agents = false;                   // reading a group's user-agent lines
  bool cur_ours = false, cur_star = false;  // the current group applies to us / to "*"
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (const auto hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      continue;
    }
    const std::string_view key = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(key, "user-agent")) {
      if (!in_agents) {
        cur_ours = cur_star = false;
        in_agents = true;
      }
      const std::string_view token = product_token(value);
      if (token == "*") {
        cur_star = true;
        star_seen = true;
      } else if (!token.empty() && iequals(token, agent)) {
        cur_ours = true;
        ours_seen = true;
      }
      continue;
    }
    const bool allow = iequals(key, "allow");
    if (allow || iequals(key, "disallow")) {
      in_agents = false;
      if (value.empty() && !allow) {
        continue;  // "Disallow:" allows everything: no rule
      }
      for (auto* g : {cur_ours ? &ours : nullptr, cur_star ? &star : nullptr}) {
        if (g != nullptr && g->rules.size() < robots_max_rules) {
          g->rules.push_back(rule{normalize_pattern(value), allow});
        }
      }
    } else if (iequals(key, "crawl-delay")) {
      in_agents = false;
      double d = -1;
      const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), d);
      if (ec == std::errc() && std::isfinite(d) && d >= 0) {
        for (auto* g : {cur_ours ? &ours : nullptr, cur_star ? &star : nullptr}) {
          if (g != nullptr && !g->delay) {
            g->delay = d;
          }
        }
      }
    } else if (iequals(key, "sitemap")) {
      if (out.sitemaps_.size() < 1000 && !value.empty()) {
        out.sitemaps_.emplace_back(value);
      }
    } else {
      in_agents = false;  // any other record ends a run of user-agent lines
    }
  }
  group_rules& g = ours_seen ? ours : star;
  if (ours_seen || star_seen) {
    out.rules_ = std::move(g.rules);
    out.crawl_delay_ = g.delay;
  }
  return out;
}

bool robots_rules::allowed(std::string_view path_query) const {
  if (path_query == "/robots.txt") {
    return true;
  }
  std::size_t best = 0;
  bool best_allow = true, matched = false;
  for (const auto& r : rules_) {
    const std::size_t len = r.pattern.size();
    if (matched && len < best) {
      continue;
    }
    if (!robots_pattern_matches(r.pattern, path_query)) {
      continue;
    }
    if (!matched || len > best || (len == best && r.allow)) {
      best = len;
      best_allow = r.allow;
      matched = true;
    }
  }
  return best_allow;
}

robots_policy robots_policy_of(long status, std::string_view body, std::string_view agent) {
  robots_policy p;
  if (status >= 200 && status < 300) {
    p.access = robots_access::rules;
    p.rules = robots_rules::parse(body, agent);
  } else if (status == 0 || status == 429 || status >= 500) {
    p.access = robots_access::disallow_all;
  } else {
    p.access = robots_access::allow_all;  // 3xx left over, 4xx: unavailable
  }
  return p;
}

}  // namespace exitpool::crawl
