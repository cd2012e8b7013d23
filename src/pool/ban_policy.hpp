#pragma once
// The one ban judgement of exitpool: does a response through an exit mean the target
// host has banned that exit, and for how long? Used by the gateway (plain-HTTP
// responses) and by fetch, so both treat the same response the same way.
//
// The semantics, in full:
//  - A response whose status is in `statuses` is a ban.
//  - Otherwise, with `patterns`, each pattern (RE2 syntax, searched, not anchored;
//    https://github.com/google/re2/wiki/Syntax) is looked for in the response's *ban text*:
//        "<status> <reason>\n" + "<Name>: <value>\n" per header, as received + "\n"
//        + the first `look_ahead` (16 KiB) bytes of the body, as received (a compressed
//        body is not decoded).
//    A match is a ban. The text is matched byte for byte (Latin-1: any bytes, no UTF-8
//    decoding), in time linear in its length whatever the pattern — a hostile origin
//    cannot make a pattern backtrack (std::regex overflowed its stack on `(a|b)*c`).
//    `(?i)` makes a pattern case-insensitive; `.` does not match a newline unless `(?s)`.
//    No backreferences or lookaround (RE2 refuses them when the policy is built).
//  - A ban lasts the response's `Retry-After` (delta-seconds or HTTP-date, clamped to
//    one hour) when it has a valid one, else `duration`.
// Who builds the sample: the gateway from its parsed response head (sample_of, below);
// fetch from libcurl's header lines with the same rules (fetch/head_capture.hpp).
// tests/unit/fetch/head_capture_test.cpp shows both give the same verdicts.
// Built once at startup (patterns compiled then), then read-only: any thread.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace exitpool::proto {
struct response_head;
}

namespace exitpool::pool {

// The parts of a response the policy reads.
struct response_sample {
  int status = 0;
  std::string_view reason;
  std::string_view header_lines;  // "Name: value\n" per header (append_header_line)
  std::string_view body;          // the start of the body; only look_ahead bytes are searched
  std::string_view retry_after;   // the Retry-After value; empty when none
};

// Appends one header to a response_sample::header_lines text.
void append_header_line(std::string& lines, std::string_view name, std::string_view value);

// The sample of a parsed response head (proto::parse_response_head: header names as
// sent, values without surrounding whitespace) and the body bytes read so far. `lines`
// is cleared and holds the header lines (the sample points into it, into `head` and
// into `body`). Retry-After: the first one.
response_sample sample_of(const proto::response_head& head, std::string_view body, std::string& lines);

class ban_policy {
 public:
  static constexpr std::size_t look_ahead = 16 * 1024;

  ban_policy();
  // Throws std::invalid_argument("--ban-pattern '<p>': <why>") for a pattern that does not compile.
  ban_policy(std::vector<int> statuses, const std::vector<std::string>& patterns, std::chrono::milliseconds duration);
  ~ban_policy();
  ban_policy(ban_policy&&) noexcept;
  ban_policy& operator=(ban_policy&&) noexcept;

  // Whether the body's start is needed (patterns are configured): callers that can
  // read ahead keep up to look_ahead bytes of the body before judging.
  bool reads_body() const { return patterns_ != nullptr; }
  // Cheap pre-check: a response with this status may be a ban (it is in the list, or
  // patterns could match it). False: judge() would say no ban.
  bool may_ban(int status) const;

  // The verdict: how long to ban the exit for the host, or nullopt when this is no ban.
  // `now` (wall clock) sizes an HTTP-date Retry-After.
  std::optional<std::chrono::milliseconds> judge(const response_sample& r,
                                                 std::chrono::system_clock::time_point now) const;

  std::chrono::milliseconds duration() const { return duration_; }

 private:
  bool status_bans(int status) const;
  std::vector<int> statuses_;
  // All patterns as one alternation (?:p1)|(?:p2)|...: one linear pass over the text.
  // Empty: no patterns. Each pattern was also compiled alone first, for its error.
  std::unique_ptr<re2::RE2> patterns_;
  std::chrono::milliseconds duration_{std::chrono::minutes(5)};
};

}  // namespace exitpool::pool
