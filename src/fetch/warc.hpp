#pragma once
// WARC 1.1 records (ISO 28500:2017), each one gzip member, so `FILE.warc.gz` opens with
// standard tools (warcio, pywb, wget's and Heritrix's readers). Pure: bytes in, bytes out.
//
// What fetch records per URL that got an HTTP response: a `request` record (the request
// head as sent to the target, never a Proxy-Authorization line) and a `response` record
// (status line, headers and body of the last response). The body is recorded as received
// except for chunked framing, which libcurl removes: a Transfer-Encoding header is dropped
// and a Content-Length of the recorded body added when the response had none. fetch asks
// for no content coding in WARC mode, so bodies are stored as the server sent them.

#include <cstdint>
#include <string>
#include <string_view>

namespace exitpool::fetch {

// A random urn:uuid for WARC-Record-ID (version 4 UUID).
std::string warc_record_id(std::uint64_t a, std::uint64_t b);

// "2026-11-26T10:29:00.123456Z" for WARC-Date (WARC 1.1 allows fractions of a second).
std::string warc_date_now();

struct warc_record {
  std::string type;           // warcinfo, request, response
  std::string record_id;      // "<urn:uuid:...>"
  std::string date;           // warc_date_now()
  std::string target_uri;     // empty for warcinfo
  std::string ip;             // WARC-IP-Address; empty: none
  std::string concurrent_to;  // WARC-Concurrent-To; empty: none
  std::string content_type;   // "application/http;msgtype=response", ...
  std::string_view block;
};

// Appends one gzip member holding `r` to `out`.
void append_warc_gz(std::string& out, const warc_record& r);

// The request head to record: from the raw head libcurl sent, without Proxy-Authorization.
std::string warc_request_head(std::string_view raw_head);

// The response block: `raw_head` (status line and header lines, CRLF-terminated, as
// received, ending with the empty line) adjusted as described above, then `body`.
std::string warc_response_block(std::string_view raw_head, std::string_view body);

}  // namespace exitpool::fetch
