#pragma once
// HTTP/1.x message heads and body framing: pure codecs, no I/O.
// Callable from any thread; every function is re-entrant.
//
// The gateway never re-encodes bodies: it uses these codecs to find where a
// message ends (Content-Length or chunked) and passes the bytes through as-is.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exitpool::proto {

struct header {
  std::string name;
  std::string value;
};

struct head_limits {
  std::size_t max_head_bytes = 64 * 1024;  // whole head, start line included
  std::size_t max_line_bytes = 16 * 1024;  // any one line (start line or header line)
  std::size_t max_headers = 100;
};

enum class parse_status { complete, incomplete, error };

// On error, `error_status` is the HTTP status the gateway answers with
// (400 malformed, 414 URI too long, 431 header too large, 501 unknown method /
// transfer coding, 505 version) and `error` a short reason for X-Exitpool-Error.
struct request_head {
  std::string method;     // as sent (token, case-sensitive)
  std::string target;     // request-target as sent
  int version_minor = 1;  // HTTP/1.<minor>; only 1.0 and 1.1 are accepted
  std::vector<header> headers;
};

struct request_parse_result {
  parse_status status = parse_status::incomplete;
  std::size_t consumed = 0;  // bytes of the head (through the blank line) when complete
  request_head head;
  int error_status = 0;
  std::string error;
};

// Parses a request head from the start of `buf`. Lines end in CRLF; a bare LF
// is accepted only as a line ending (never a bare CR). Rejects: obs-fold,
// control bytes, invalid tokens, missing/invalid version, over-long lines,
// too many headers, heads over the limit.
request_parse_result parse_request_head(std::string_view buf, const head_limits& limits = {});

struct response_head {
  int version_minor = 1;
  int status = 0;
  std::string reason;
  std::vector<header> headers;
};

struct response_parse_result {
  parse_status status = parse_status::incomplete;
  std::size_t consumed = 0;
  response_head head;
  std::string error;  // on error: what is wrong with the upstream's response
};

response_parse_result parse_response_head(std::string_view buf, const head_limits& limits = {});

// Case-insensitive header lookup; the first match.
const header* find_header(const std::vector<header>& headers, std::string_view name);
bool iequals(std::string_view a, std::string_view b);
// `s` without the spaces and tabs around it (optional whitespace, RFC 9110 section 5.6.3):
// how a header value is read.
std::string_view trim_ows(std::string_view s);
// True when the comma-separated header value list contains `token` (case-insensitive).
bool header_has_token(std::string_view value, std::string_view token);

enum class body_kind { none, content_length, chunked, until_close };

struct body_framing {
  body_kind kind = body_kind::none;
  std::uint64_t length = 0;  // for content_length
};

struct framing_result {
  std::optional<body_framing> framing;  // empty on error
  int error_status = 0;                 // 400 or 501
  std::string error;
};

// RFC 9112 section 6: request bodies. Errors: both Transfer-Encoding and
// Content-Length, repeated/conflicting/invalid Content-Length, a Transfer-Encoding
// whose final coding is not chunked (501 for unknown codings).
framing_result request_body_framing(const request_head& head);

// Response bodies: none for HEAD requests, 1xx, 204, 304 and 2xx to CONNECT;
// chunked when Transfer-Encoding ends in chunked; Content-Length; else until close.
// Errors as for requests.
framing_result response_body_framing(const response_head& head, std::string_view request_method);

// Incremental chunked-body scanner. It does not decode: it tells how many of
// the given bytes belong to the chunked body so the caller can forward them
// unchanged and knows where the message ends (after the last chunk and trailers).
class chunked_scanner {
 public:
  struct result {
    std::size_t consumed = 0;  // bytes of `data` that belong to the body
    bool done = false;         // the body ended within `consumed`
    bool error = false;        // malformed chunk framing; `error_reason` says why
    // Where the trailer section (the lines after the last chunk, through the final CRLF)
    // starts in `data`: 0 when it had started before this call; npos when not reached.
    // Bytes of `data` from here to `consumed` are trailer bytes (see filter_trailers).
    std::size_t trailer_from = std::string_view::npos;
  };
  result feed(std::string_view data);
  const std::string& error_reason() const { return error_; }
  // The first chunk-size line (size, extensions, CRLF) has been read and is valid.
  bool size_line_seen() const { return size_line_seen_; }
  // Bytes of chunk data still to come in the current chunk (0 outside chunk data). The
  // forward path moves them without looking at them (splice) and then calls skip_data.
  std::uint64_t data_remaining() const { return state_ == state::data ? remaining_ : 0; }
  // Accounts for `n` bytes of chunk data that went past without feed(); n <= data_remaining().
  void skip_data(std::uint64_t n);

 private:
  enum class state {
    size,
    size_ext,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer_start,
    trailer_line,
    trailer_lf,
    final_lf,
    done
  };
  state state_ = state::size;
  std::uint64_t remaining_ = 0;
  int size_digits_ = 0;
  std::size_t line_len_ = 0;
  std::size_t trailer_bytes_ = 0;  // whole trailer section, bounded
  bool trailer_colon_ = false;     // the current trailer line has its ':'
  bool size_line_seen_ = false;
  std::string error_;
};

// Whether the chunked body bytes already received (`buffered`, from the body's start)
// begin well: complete when the first chunk-size line is there and valid, error when
// they are malformed (`error` says why), incomplete when the first line is not all there.
// Lets the gateway refuse a body before any of the request reaches the target.
struct chunked_start {
  parse_status status = parse_status::incomplete;
  std::string error;
};
chunked_start check_chunked_start(std::string_view buffered);

// Trailer fields (RFC 9110 section 6.5) never forwarded: hop-by-hop fields (as for
// headers, is_hop_by_hop) and the fields section 6.5.1 forbids in trailers: framing
// (Content-Length, Transfer-Encoding, Trailer), routing (Host), request modifiers
// (Expect, Max-Forwards, Range, TE, Cache-Control, If-*), authentication (Authorization,
// Proxy-Authorization, Cookie, Set-Cookie, WWW-/Proxy-Authenticate, *-Authentication-Info),
// response control (Age, Date, Expires, Location, Retry-After, Vary, Warning) and content
// handling (Content-Encoding, Content-Type, Content-Range).
bool is_forbidden_trailer(std::string_view name, const std::vector<header>& head_headers);

// Appends to `out` the trailer section `section` (trailer lines, each "name:value" and
// CRLF, then the final CRLF, as chunked_scanner accepted them) without the forbidden
// fields; `head_headers` is the message's header section (its Connection header names
// more hop-by-hop fields). `section` must come from chunked_scanner (well-formed).
void filter_trailers(std::string_view section, const std::vector<header>& head_headers, std::string& out);

struct authority {
  std::string host;  // without brackets for IPv6 literals, as given (not lower-cased)
  std::uint16_t port = 0;
};

// "host:port", "[v6]:port"; `default_port` used when the port is absent (0 → port required).
std::optional<authority> parse_authority(std::string_view s, std::uint16_t default_port);

struct absolute_target {
  std::string scheme;  // lower-case; the gateway forwards "http" only (gateway/http_request.hpp)
  authority where;
  std::string origin_form;  // path and query, "/" when empty
};

// "scheme://host[:port][/path][?query]" (userinfo is rejected; fragment is an error).
// Any scheme parses; the port defaults to 80 for http, 443 for https, else it is required.
std::optional<absolute_target> parse_absolute_target(std::string_view target);

// The authority of an absolute-form target as written ("Host:8080" in
// "http://Host:8080/x"): what RFC 9112 section 3.2.2 makes the Host header. A view into
// `target`; empty when `target` has no "scheme://" prefix.
std::string_view authority_of(std::string_view target);

// "host:port" or "[v6]:port" for use on the wire (brackets added for IPv6 literals).
std::string format_authority(std::string_view host, std::uint16_t port);

// Hop-by-hop header names (RFC 9110 section 7.6.1) plus Proxy-Connection,
// Proxy-Authorization and Proxy-Authenticate, and every name listed in the Connection
// header. Transfer-Encoding, Content-Length and Host are never hop-by-hop here, even when
// Connection lists them: the gateway forwards bodies as-is, so their framing travels with them.
bool is_hop_by_hop(std::string_view name, const std::vector<header>& headers);

// Standard reason phrase of a status the gateway or the admin endpoint generates
// ("Bad Gateway"); "Error" for any other.
const char* reason_phrase(int status);

}  // namespace exitpool::proto
