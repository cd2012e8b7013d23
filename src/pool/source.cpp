#include "pool/source.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "proto/text.hpp"

namespace exitpool::pool {

namespace {

constexpr std::string_view key_placeholder = "{key}";

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && proto::lower(s.substr(0, prefix.size())) == prefix;
}

void replace_all(std::string& text, std::string_view what, std::string_view with) {
  if (what.empty()) {
    return;
  }
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + with.size())) {
    text.replace(pos, what.size(), with);
  }
}

double seconds_of(clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

bool source_spec::is_url() const {
  return starts_with_nocase(location, "http://") || starts_with_nocase(location, "https://");
}

std::string source_spec::name() const {
  if (!is_url()) {
    return location;
  }
  // scheme://user:password@host/... → scheme://user:***@host/...
  std::string out = location;
  const auto start = out.find("://") + 3;
  const auto end = out.find_first_of("/?#", start);
  const auto authority = out.substr(start, end == std::string::npos ? std::string::npos : end - start);
  const auto at = authority.rfind('@');
  if (at != std::string::npos) {
    const auto colon = authority.find(':');
    if (colon != std::string::npos && colon < at) {
      out.replace(start + colon + 1, at - colon - 1, "***");
    }
  }
  return redact_key(std::move(out), *this);
}

std::string source_spec::request_url() const {
  std::string out = location;
  if (key_header.empty()) {
    replace_all(out, key_placeholder, proto::percent_encode(key));
  }
  return out;
}

std::string check_source(const source_spec& s) {
  const auto name = s.name();
  if (s.location.empty()) {
    return "--pool: an empty source";
  }
  if (!s.is_url()) {
    if (s.location.find("://") != std::string::npos) {
      return fmt::format("--pool {}: only files and http:// or https:// URLs are sources", proto::clip(name));
    }
    if (s.refresh.count() > 0) {
      return fmt::format("--pool {}: --pool-refresh is for URL sources (a file reloads on SIGHUP, or --watch)",
                         proto::clip(name));
    }
    if (!s.key.empty() || !s.key_header.empty()) {
      return fmt::format("--pool {}: a key is for URL sources", proto::clip(name));
    }
  } else {
    const bool placeholder = s.location.find(key_placeholder) != std::string::npos;
    if (placeholder && s.key.empty()) {
      return fmt::format("--pool {}: the URL has {{key}} but no key is given (--pool-key-file or --pool-key-env)",
                         proto::clip(name));
    }
    if (!s.key.empty() && !placeholder && s.key_header.empty()) {
      return fmt::format("--pool {}: a key is given but the URL has no {{key}} and there is no --pool-key-header",
                         proto::clip(name));
    }
    const bool token = std::all_of(s.key_header.begin(), s.key_header.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
    if (!token) {
      return fmt::format("--pool {}: --pool-key-header takes a header name (letters, digits, '-')", proto::clip(name));
    }
    if (!s.key_header.empty() && s.key.empty()) {
      return fmt::format("--pool {}: --pool-key-header without a key (--pool-key-file or --pool-key-env)",
                         proto::clip(name));
    }
    if (proto::has_control(s.key)) {
      return fmt::format("--pool {}: the key holds a control character", proto::clip(name));
    }
  }
  if (s.timeout.count() <= 0) {
    return fmt::format("--pool {}: --pool-timeout must be positive", proto::clip(name));
  }
  if (s.refresh.count() < 0 || (s.refresh.count() > 0 && s.refresh < std::chrono::seconds(1))) {
    return fmt::format("--pool {}: --pool-refresh is 0 (off) or at least 1s: a list API is not polled faster",
                       proto::clip(name));
  }
  if (auto err = proto::check_list_defaults(s.defaults); !err.empty()) {
    return fmt::format("--pool {}: {}", proto::clip(name), err);
  }
  return {};
}

std::string redact_key(std::string text, const source_spec& s) {
  if (s.key.empty()) {
    return text;
  }
  replace_all(text, s.key, "***");
  replace_all(text, proto::percent_encode(s.key), "***");
  return text;
}

std::chrono::milliseconds retry_delay(int failures, std::chrono::milliseconds refresh, double jitter01,
                                      std::optional<std::chrono::seconds> retry_after) {
  using std::chrono::milliseconds;
  const milliseconds cap = refresh.count() > 0 ? refresh : milliseconds(std::chrono::minutes(5));
  const int doublings = std::clamp(failures - 1, 0, 30);
  const double base_ms = std::min(1000.0 * std::pow(2.0, doublings), static_cast<double>(cap.count()));
  const double factor = 0.5 + 0.5 * std::clamp(jitter01, 0.0, 1.0);
  milliseconds delay(static_cast<std::int64_t>(base_ms * factor));
  if (retry_after && *retry_after > delay) {
    delay = *retry_after;
  }
  return std::max(delay, milliseconds(1));
}

const char* verdict_name(fetch_verdict v) {
  switch (v) {
    case fetch_verdict::changed:
      return "changed";
    case fetch_verdict::unchanged:
      return "unchanged";
    case fetch_verdict::failed:
      return "failed";
  }
  return "failed";
}

fetch_decision apply_fetch(source_state& st, const source_spec& spec, const fetch_result& r, time_point now,
                           double jitter01) {
  st.last_attempt = now;
  const auto name = spec.name();
  auto fail = [&](std::string why) {
    ++st.failures;
    ++st.fetches_failed;
    st.last_error = redact_key(std::move(why), spec);
    st.next_fetch = now + retry_delay(st.failures, spec.refresh, jitter01, r.retry_after);
    return fetch_decision{fetch_verdict::failed, st.last_error};
  };
  auto good = [&](fetch_verdict v) {
    st.failures = 0;
    st.last_error.clear();
    st.last_success = now;
    st.next_fetch = spec.refresh.count() > 0 ? now + spec.refresh : time_point::max();
    ++(v == fetch_verdict::changed ? st.fetches_changed : st.fetches_unchanged);
    return fetch_decision{v, {}};
  };
  if (!r.error.empty()) {
    return fail(fmt::format("{}: {}", name, r.error));
  }
  if (r.status == 304 && st.loaded) {
    return good(fetch_verdict::unchanged);
  }
  if (r.status != 200) {
    return fail(fmt::format("{}: HTTP {} (expected 200 with the list{})", name, r.status,
                            r.status >= 300 && r.status < 400 ? "; redirects are not followed" : ""));
  }
  const std::uint64_t hash = std::hash<std::string_view>{}(r.body);
  if (st.loaded && hash == st.body_hash) {
    st.etag = r.etag;
    st.last_modified = r.last_modified;
    return good(fetch_verdict::unchanged);
  }
  std::vector<proto::exit_spec> exits;
  try {
    exits = proto::parse_pool_list(r.body, name, spec.defaults, spec.allow_empty);
  } catch (const proto::pool_error& e) {
    return fail(e.what());
  }
  st.exits = std::move(exits);
  st.loaded = true;
  st.body_hash = hash;
  st.etag = r.etag;
  st.last_modified = r.last_modified;
  return good(fetch_verdict::changed);
}

std::vector<std::string> conditional_headers(const source_state& st) {
  std::vector<std::string> out;
  if (!st.loaded) {
    return out;
  }
  if (!st.etag.empty()) {
    out.push_back("If-None-Match: " + st.etag);
  }
  if (!st.last_modified.empty()) {
    out.push_back("If-Modified-Since: " + st.last_modified);
  }
  return out;
}

merged_pool merge_sources(std::vector<named_list> lists) {
  merged_pool out;
  if (lists.size() == 1) {
    out.exits = std::move(lists.front().exits);
    return out;
  }
  std::size_t total = 0;
  for (const auto& l : lists) {
    total += l.exits.size();
  }
  out.exits.reserve(total);
  std::unordered_map<std::string, std::size_t> first;  // id → index into lists
  first.reserve(total);
  for (std::size_t k = 0; k < lists.size(); ++k) {
    for (auto& e : lists[k].exits) {
      const auto [it, fresh] = first.emplace(e.id, k);
      if (!fresh) {
        out.duplicates.push_back(
            fmt::format("{} from {} (already from {})", e.id, lists[k].name, lists[it->second].name));
        continue;
      }
      out.exits.push_back(std::move(e));
    }
  }
  return out;
}

source_status status_of(const source_spec& spec, const source_state& st, time_point now) {
  source_status s;
  s.name = spec.name();
  s.url = spec.is_url();
  s.exits = st.exits.size();
  s.ok = st.failures == 0;
  s.last_error = st.last_error;
  s.failures = st.failures;
  s.refresh_s = std::chrono::duration<double>(spec.refresh).count();
  if (st.last_success) {
    s.last_success_age_s = std::max(0.0, seconds_of(now - *st.last_success));
  }
  if (s.url && st.next_fetch != time_point::max() && st.next_fetch != time_point{}) {
    s.next_fetch_in_s = std::max(0.0, seconds_of(st.next_fetch - now));
  }
  s.fetches_changed = st.fetches_changed;
  s.fetches_unchanged = st.fetches_unchanged;
  s.fetches_failed = st.fetches_failed;
  return s;
}

}  // namespace exitpool::pool
