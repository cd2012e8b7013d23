#pragma once
// The last response's head of a fetch attempt as the ban policy reads it
// (pool/ban_policy.hpp: "STATUS REASON\n" + header lines + "\n" + body start), built
// from the lines libcurl's header callback hands over. The rules are the gateway's
// (proto::parse_response_head, then pool::sample_of), so both judge the same response
// the same way (tests/unit/fetch/head_capture_test.cpp):
//  - the reason phrase is what follows "STATUS " on the status line, as sent;
//  - a header line gives "Name: value", the name as sent, the value without the spaces
//    and tabs around it; a line without a colon or starting with whitespace is skipped
//    (the gateway refuses such a head; libcurl passes it on);
//  - a status line starts a new response (a redirect, a 1xx): only the last one counts;
//    lines after the head's blank line (chunked trailers) are not part of it;
//  - Retry-After is the first one.
// HTTP/2 and HTTP/3 responses have no reason phrase ("HTTP/2 403").
// Pure: no I/O; owned by one transfer (one shard's thread).

#include <string>
#include <string_view>

#include "pool/ban_policy.hpp"

namespace exitpool::fetch {

class head_capture {
 public:
  // Forgets the last response. `keep_lines`: collect header lines (only ban patterns
  // read them; the status, reason and Retry-After are always kept).
  void reset(bool keep_lines);
  // One line from libcurl's header callback, CRLF included.
  void line(std::string_view raw);

  int status() const { return status_; }
  std::string_view retry_after() const { return retry_after_; }
  // The ban policy's sample of the last response, with `body` (the start of its body).
  // It points into this capture and into body.
  pool::response_sample sample(std::string_view body) const;

 private:
  bool keep_lines_ = false;
  bool in_head_ = false;  // between a status line and the blank line that ends its head
  bool have_retry_after_ = false;
  int status_ = 0;
  std::string reason_;
  std::string lines_;
  std::string retry_after_;
};

}  // namespace exitpool::fetch
