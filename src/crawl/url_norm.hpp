#pragma once
// URL normalisation for the crawler: one page, one key. A link as found in HTML (relative
// or absolute, with stray spaces or non-ASCII bytes) is resolved against its base and
// brought to one canonical form (RFC 3986 section 6 with Boost.URL):
//   - scheme and host lower-case; the default port (80 for http, 443 for https) removed;
//   - dot segments removed; an empty path is "/";
//   - percent-encoding: triplets upper-case, unreserved characters decoded, bytes that
//     may not appear in a URL (space, controls, non-ASCII, "<>\^`{|}) encoded;
//   - the fragment removed;
//   - optionally, query parameters stripped by name (tracking parameters), or the whole
//     query.
// Only http and https URLs with a host are crawlable; everything else (mailto:,
// javascript:, data:, a URL over max_length) is refused.
//
// Pure and thread-safe: any thread.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exitpool::crawl {

struct normalize_options {
  std::vector<std::string> strip_params;  // query parameters removed by name (exact, case-sensitive)
  bool strip_query = false;               // remove the whole query
  std::size_t max_length = 2048;          // longer URLs are refused (as search engines do)
};

// `href` resolved against the absolute URL `base` and normalised; nullopt when it is not
// a crawlable URL. `base` is trusted to be absolute (a normalised URL, or a <base href>
// already resolved).
std::optional<std::string> resolve_url(std::string_view base, std::string_view href, const normalize_options& o);

// An absolute URL (a seed) normalised; nullopt when it is not a crawlable http(s) URL.
std::optional<std::string> normalize_url(std::string_view url, const normalize_options& o);

// The parts of a normalised URL the crawler keys on. `url` must come from the functions
// above (no parsing beyond splitting).
struct url_key {
  std::string_view scheme;      // "http" or "https"
  std::string_view authority;   // host[:port], lower-case: the politeness and robots.txt key
  std::string_view host;        // without the port (IPv6 keeps its brackets)
  std::string_view path_query;  // "/path?query": what robots.txt rules match
};
url_key split_url(std::string_view normalized);

}  // namespace exitpool::crawl
