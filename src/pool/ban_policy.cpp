#include "pool/ban_policy.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <stdexcept>

#include "pool/ban.hpp"
#include "proto/http_head.hpp"

namespace exitpool::pool {

void append_header_line(std::string& lines, std::string_view name, std::string_view value) {
  lines.append(name).append(": ").append(value).append("\n");
}

response_sample sample_of(const proto::response_head& head, std::string_view body, std::string& lines) {
  lines.clear();
  for (const auto& h : head.headers) {
    append_header_line(lines, h.name, h.value);
  }
  const auto* ra = proto::find_header(head.headers, "Retry-After");
  return {.status = head.status,
          .reason = head.reason,
          .header_lines = lines,
          .body = body,
          .retry_after = ra != nullptr ? std::string_view(ra->value) : std::string_view()};
}

namespace {

RE2::Options pattern_options() {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);  // bodies are bytes, not necessarily UTF-8
  o.set_log_errors(false);                       // errors go to the caller, once
  o.set_max_mem(64 << 20);                       // the DFA's cache; a pattern that needs more fails to build
  return o;
}

}  // namespace

ban_policy::ban_policy() = default;
ban_policy::~ban_policy() = default;
ban_policy::ban_policy(ban_policy&&) noexcept = default;
ban_policy& ban_policy::operator=(ban_policy&&) noexcept = default;

ban_policy::ban_policy(std::vector<int> statuses, const std::vector<std::string>& patterns,
                       std::chrono::milliseconds duration)
    : statuses_(std::move(statuses)), duration_(duration) {
  if (patterns.empty()) {
    return;
  }
  const RE2::Options options = pattern_options();
  std::string all;
  for (const auto& p : patterns) {
    const RE2 one(p, options);
    if (!one.ok()) {
      throw std::invalid_argument("--ban-pattern '" + p + "': " + one.error());
    }
    all.append(all.empty() ? "" : "|").append("(?:").append(p).append(")");
  }
  patterns_ = std::make_unique<RE2>(all, options);
  if (!patterns_->ok()) {
    throw std::invalid_argument("--ban-pattern: the patterns together: " + patterns_->error());
  }
}

bool ban_policy::status_bans(int status) const {
  return std::find(statuses_.begin(), statuses_.end(), status) != statuses_.end();
}

bool ban_policy::may_ban(int status) const {
  return patterns_ != nullptr || status_bans(status);
}

std::optional<std::chrono::milliseconds> ban_policy::judge(const response_sample& r,
                                                           std::chrono::system_clock::time_point now) const {
  bool banned = status_bans(r.status);
  if (!banned && patterns_ != nullptr) {
    std::string text = std::to_string(r.status);
    text.append(" ").append(r.reason).append("\n");
    text.append(r.header_lines).append("\n");
    text.append(r.body.substr(0, std::min(r.body.size(), look_ahead)));
    banned = RE2::PartialMatch(text, *patterns_);
  }
  if (!banned) {
    return std::nullopt;
  }
  if (!r.retry_after.empty()) {
    if (auto d = parse_retry_after(r.retry_after, now)) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
    }
  }
  return duration_;
}

}  // namespace exitpool::pool
