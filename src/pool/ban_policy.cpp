#include "pool/ban_policy.hpp"

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

ban_policy::ban_policy(std::vector<int> statuses, const std::vector<std::string>& patterns,
                       std::chrono::milliseconds duration)
    : statuses_(std::move(statuses)), duration_(duration) {
  patterns_.reserve(patterns.size());
  for (const auto& p : patterns) {
    try {
      patterns_.emplace_back(p, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument("--ban-pattern '" + p + "': " + e.what());
    }
  }
}

bool ban_policy::status_bans(int status) const {
  return std::find(statuses_.begin(), statuses_.end(), status) != statuses_.end();
}

bool ban_policy::may_ban(int status) const {
  return !patterns_.empty() || status_bans(status);
}

std::optional<std::chrono::milliseconds> ban_policy::judge(const response_sample& r,
                                                           std::chrono::system_clock::time_point now) const {
  bool banned = status_bans(r.status);
  if (!banned && !patterns_.empty()) {
    std::string text = std::to_string(r.status);
    text.append(" ").append(r.reason).append("\n");
    text.append(r.header_lines).append("\n");
    text.append(r.body.substr(0, std::min(r.body.size(), look_ahead)));
    banned = std::any_of(patterns_.begin(), patterns_.end(),
                         [&text](const std::regex& re) { return std::regex_search(text, re); });
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
