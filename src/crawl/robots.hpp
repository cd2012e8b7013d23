#pragma once
// robots.txt (RFC 9309) for the crawler: parse a host's file once, then answer "may this
// path be fetched?" for every URL of the host.
//
//   - Groups: one or more user-agent lines, then their rules. The groups naming our product
//     token (case-insensitive) are merged and used; when none does, the "*" groups; when
//     there are none either, everything is allowed.
//   - Rules: the longest matching Allow/Disallow pattern wins (length in bytes); on a tie
//     Allow wins. "*" matches any run of bytes, a final "$" anchors the end; otherwise a
//     pattern matches a prefix. An empty Disallow allows everything. /robots.txt is
//     always allowed.
//   - Crawl-delay (not in the RFC, widely used): of our group, in seconds.
//   - Only the first max_bytes (500 KiB, as Google) are parsed; lines that are not
//     "key: value" (binary garbage) are skipped; at most max_rules rules are kept.
//
// What a fetch of robots.txt means for the host (robots_policy_of) follows the RFC: 2xx:
// these rules; 4xx: no rules (allow all); 5xx, 429 or no answer: unreachable, disallow
// all until it is fetched again.
//
// Pure: bytes and facts in, decisions out. A robots_rules is immutable once built and may
// be read from any thread.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exitpool::crawl {

inline constexpr std::size_t robots_max_bytes = 500 * 1024;
inline constexpr std::size_t robots_max_rules = 10000;

class robots_rules {
 public:
  // Everything allowed (no robots.txt, or a 4xx).
  robots_rules() = default;

  // Parses `text` for the product token `agent` (e.g. "exitpool-crawl"; matched
  // case-insensitively against each user-agent line's first word).
  static robots_rules parse(std::string_view text, std::string_view agent);

  // May `path_query` ("/a/b?c", as in a normalised URL) be fetched?
  bool allowed(std::string_view path_query) const;

  // Crawl-delay of our group, if it had one (negative or unparseable values are ignored).
  std::optional<double> crawl_delay() const { return crawl_delay_; }
  // Sitemap: lines (any group), as written.
  const std::vector<std::string>& sitemaps() const { return sitemaps_; }
  std::size_t rule_count() const { return rules_.size(); }
  bool truncated() const { return truncated_; }  // the file was over robots_max_bytes

 private:
  struct rule {
    std::string pattern;
    bool allow = false;
  };
  std::vector<rule> rules_;
  std::optional<double> crawl_delay_;
  std::vector<std::string> sitemaps_;
  bool truncated_ = false;
};

// Does `pattern` (robots.txt syntax: "*" any run, final "$" end) match `path`? Exposed for
// tests.
bool robots_pattern_matches(std::string_view pattern, std::string_view path);

// The product token of a User-Agent string: "exitpool-crawl/0.1 (+x)" -> "exitpool-crawl".
std::string_view product_token(std::string_view user_agent);

// What one fetch of /robots.txt tells about a host.
enum class robots_access { rules, allow_all, disallow_all };
struct robots_policy {
  robots_access access = robots_access::allow_all;
  robots_rules rules;  // access == rules
};
// `status` 0: no response (a network error). Redirects have been followed by then; a 3xx
// left over (too many redirects) counts as unavailable (allow all), as the RFC allows.
robots_policy robots_policy_of(long status, std::string_view body, std::string_view agent);

}  // namespace exitpool::crawl
