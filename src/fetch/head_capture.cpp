#include "fetch/head_capture.hpp"

#include "proto/http_head.hpp"

namespace exitpool::fetch {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

void head_capture::reset(bool keep_lines) {
  keep_lines_ = keep_lines;
  in_head_ = false;
  have_retry_after_ = false;
  status_ = 0;
  reason_.clear();
  lines_.clear();
  retry_after_.clear();
}

void head_capture::line(std::string_view raw) {
  if (raw.ends_with('\n')) {
    raw.remove_suffix(1);
  }
  if (raw.ends_with('\r')) {
    raw.remove_suffix(1);
  }
  if (raw.starts_with("HTTP/")) {
    // "HTTP/1.1 403 Forbidden", "HTTP/2 403 ": the version, SP, three digits, [SP reason].
    reset(keep_lines_);
    in_head_ = true;
    const auto sp = raw.find(' ');
    if (sp != std::string_view::npos && raw.size() >= sp + 4 && is_digit(raw[sp + 1]) && is_digit(raw[sp + 2]) &&
        is_digit(raw[sp + 3])) {
      status_ = (raw[sp + 1] - '0') * 100 + (raw[sp + 2] - '0') * 10 + (raw[sp + 3] - '0');
      if (raw.size() > sp + 4 && raw[sp + 4] == ' ') {
        reason_.assign(raw.substr(sp + 5));
      }
    }
    return;
  }
  if (!in_head_) {
    return;
  }
  if (raw.empty()) {
    in_head_ = false;  // the head ends; what follows (trailers) is not part of it
    return;
  }
  const auto colon = raw.find(':');
  if (colon == std::string_view::npos || colon == 0 || raw.front() == ' ' || raw.front() == '\t') {
    return;
  }
  const std::string_view name = raw.substr(0, colon);
  const std::string_view value = proto::trim_ows(raw.substr(colon + 1));
  if (!have_retry_after_ && proto::iequals(name, "retry-after")) {
    have_retry_after_ = true;
    retry_after_.assign(value);
  }
  if (keep_lines_) {
    pool::append_header_line(lines_, name, value);
  }
}

pool::response_sample head_capture::sample(std::string_view body) const {
  return {.status = status_, .reason = reason_, .header_lines = lines_, .body = body, .retry_after = retry_after_};
}

}  // namespace exitpool::fetch
