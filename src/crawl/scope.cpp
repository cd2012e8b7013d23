#include "crawl/scope.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <stdexcept>

#include "crawl/url_norm.hpp"

namespace exitpool::crawl {

namespace {
std::vector<std::unique_ptr<re2::RE2>> compile(const std::vector<std::string>& patterns, const char* option) {
  std::vector<std::unique_ptr<re2::RE2>> out;
  for (const auto& p : patterns) {
    auto re = std::make_unique<re2::RE2>(p, re2::RE2::Quiet);
    if (!re->ok()) {
      throw std::invalid_argument(std::string(option) + " " + p + ": " + re->error());
    }
    out.push_back(std::move(re));
  }
  return out;
}

bool any_match(const std::vector<std::unique_ptr<re2::RE2>>& res, std::string_view url) {
  return std::any_of(res.begin(), res.end(), [&](const auto& re) { return re2::RE2::PartialMatch(url, *re); });
}
}  // namespace

bool parse_scope_kind(std::string_view s, scope_kind& out) {
  if (s == "host") {
    out = scope_kind::host;
  } else if (s == "domain") {
    out = scope_kind::domain;
  } else if (s == "prefix") {
    out = scope_kind::prefix;
  } else if (s == "any") {
    out = scope_kind::any;
  } else {
    return false;
  }
  return true;
}

url_scope::url_scope(scope_kind kind, const std::vector<std::string>& seeds, const std::vector<std::string>& include,
                     const std::vector<std::string>& exclude)
    : kind_(kind), include_(compile(include, "--include")), exclude_(compile(exclude, "--exclude")) {
  for (const auto& s : seeds) {
    const url_key k = split_url(s);
    std::string root;
    switch (kind) {
      case scope_kind::host:
        root = std::string(k.host);
        break;
      case scope_kind::domain:
        root = std::string(k.host.substr(0, 4) == "www." ? k.host.substr(4) : k.host);
        break;
      case scope_kind::prefix: {
        const std::string_view path = k.path_query.substr(0, k.path_query.find('?'));
        root =
            std::string(s.substr(0, s.size() - k.path_query.size())) + std::string(path.substr(0, path.rfind('/') + 1));
        break;
      }
      case scope_kind::any:
        break;
    }
    if (std::find(roots_.begin(), roots_.end(), root) == roots_.end()) {
      roots_.push_back(std::move(root));
    }
  }
}

url_scope::~url_scope() = default;
url_scope::url_scope(url_scope&&) noexcept = default;
url_scope& url_scope::operator=(url_scope&&) noexcept = default;

bool url_scope::allows(std::string_view url) const {
  const url_key k = split_url(url);
  if (k.host.empty()) {
    return false;
  }
  bool in = false;
  switch (kind_) {
    case scope_kind::any:
      in = true;
      break;
    case scope_kind::host:
      in = std::find(roots_.begin(), roots_.end(), k.host) != roots_.end();
      break;
    case scope_kind::domain:
      in = std::any_of(roots_.begin(), roots_.end(), [&](const std::string& d) {
        return k.host == d || (k.host.size() > d.size() && k.host.substr(k.host.size() - d.size()) == d &&
                               k.host[k.host.size() - d.size() - 1] == '.');
      });
      break;
    case scope_kind::prefix:
      in =
          std::any_of(roots_.begin(), roots_.end(), [&](const std::string& p) { return url.substr(0, p.size()) == p; });
      break;
  }
  if (!in) {
    return false;
  }
  if (!include_.empty() && !any_match(include_, url)) {
    return false;
  }
  return !any_match(exclude_, url);
}

}  // namespace exitpool::crawl
