#pragma once
// Which URLs a crawl may follow: --scope (relative to the seeds), --include and --exclude
// (RE2, searched anywhere in the normalised URL).
//
//   host    the URL's host is a seed's host (any port or scheme)
//   domain  the URL's host is a seed's host or below it; a seed's leading "www." is
//           dropped first, so www.example.com covers example.com and a.example.com
//           (no public-suffix list: a seed of "co.uk" would cover all of co.uk)
//   prefix  the URL starts with a seed URL up to and including its path's last "/"
//   any     every http(s) URL
// Then, when any --include is given, the URL must match one of them; it must match no
// --exclude.
//
// Built once (throws std::invalid_argument naming a regex that does not compile), then
// read-only: any thread.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace exitpool::crawl {

enum class scope_kind { host, domain, prefix, any };
// "host", "domain", "prefix", "any"; false for anything else.
bool parse_scope_kind(std::string_view s, scope_kind& out);

class url_scope {
 public:
  // `seeds`: normalised seed URLs.
  url_scope(scope_kind kind, const std::vector<std::string>& seeds, const std::vector<std::string>& include,
            const std::vector<std::string>& exclude);
  ~url_scope();
  url_scope(url_scope&&) noexcept;
  url_scope& operator=(url_scope&&) noexcept;

  // `url` is normalised (crawl/url_norm.hpp).
  bool allows(std::string_view url) const;

 private:
  scope_kind kind_;
  std::vector<std::string> roots_;  // hosts, domains or prefixes, per kind
  std::vector<std::unique_ptr<re2::RE2>> include_, exclude_;
};

}  // namespace exitpool::crawl
