#pragma once
// One output record of `fetch`, and its JSON line. Pure: no I/O.
//
// Line format (members in this order; "url" is always first, resume relies on it):
//   {"url":..., "final_url":..., "status":200, "headers":{"content-type":...},
//    "body":"text" | "body_base64":"..." | "body_file":"DIR/....body", "body_truncated":true,
//    "body_size":N, "exit":"d1", "exit_ip":"127.0.0.21", "attempts":1,
//    "timings":{"dns":0.1,"connect":0.3,"tls":0,"ttfb":1.2,"total":1.4}, "error":null,
//    "warc_offset":N, "warc_length":N,   (these two with --warc, for a response only)
//    ...}                                (crawl's members: `extra`)
// status is 0 when no HTTP response arrived. timings are libcurl's *_TIME_T of the
// last attempt, in milliseconds from that attempt's start (so connect includes dns).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace exitpool::fetch {

struct timings_ms {
  double dns = 0;
  double connect = 0;
  double tls = 0;
  double ttfb = 0;
  double total = 0;
};

struct fetch_result {
  std::string url;
  std::string final_url;
  long status = 0;
  // Selected response headers (lower-case names), in the order received.
  std::vector<std::pair<std::string, std::string>> headers;
  // Inline body (written when body_file is empty and `inline_body` is set).
  std::string_view body;
  bool inline_body = false;
  bool body_truncated = false;
  std::uint64_t body_size = 0;  // bytes received (decoded), even when not kept
  std::string body_file;
  std::string exit_id;  // empty: no exit was used
  std::string exit_ip;
  int attempts = 0;
  timings_ms timings;
  std::string error;  // empty: success (any HTTP status counts as a result)
  // With --warc: where this URL's records are in the WARC file (-1: none).
  std::int64_t warc_offset = -1;
  std::uint64_t warc_length = 0;
  // More members, written last as they are (",\"depth\":1,..."): crawl's depth and links.
  std::string extra;
};

// Appends one JSON line (with its "\n") for `r` to `out`.
void append_result_line(std::string& out, const fetch_result& r);

// The headers a result keeps, by lower-case name.
bool is_selected_header(std::string_view lower_name);

}  // namespace exitpool::fetch
