#include "proto/http_head.hpp"

// Why one file of ~1,000 lines: it is the whole HTTP/1.1 message-head grammar (RFC 9110,
// RFC 9112): the head scanner, body framing (Transfer-Encoding / Content-Length), the
// chunked scanner and trailer filter, and authority / target parsing share one set of
// character classes and limits, and every rule that decides whether bytes are forwarded
// should be read next to the others. Sectioned by `// ----`; fuzzed by fuzz_http_request,
// fuzz_http_response, fuzz_chunked and fuzz_authority.

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>

#include "proto/text.hpp"

namespace exitpool::proto {
namespace {

// ---- character classes (RFC 9110 section 5.6) ----

constexpr bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

constexpr bool is_ctl(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

// Bytes the head scanner must look at: line ends and control bytes other than HTAB.
constexpr std::array<bool, 256> needs_check = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[static_cast<std::size_t>(c)] = is_ctl(static_cast<unsigned char>(c)) && c != '\t';
  }
  return t;
}();
constexpr bool is_ows(char c) {
  return c == ' ' || c == '\t';
}
constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_token(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!is_tchar(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_ows(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

namespace {

// ---- the head scanner shared by requests and responses ----

struct head_error {
  int status = 400;
  std::string reason;
};

struct scanned_head {
  parse_status status = parse_status::incomplete;
  std::size_t consumed = 0;
  std::string_view start_line;
  std::vector<header> headers;
  head_error err;
};

// 1 (HTTP/1.1), 0 (HTTP/1.0); -1 malformed; -2 well-formed but unsupported.
int parse_version(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' || !is_digit(v[7])) {
    return -1;
  }
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) {
    return -2;
  }
  return v[7] - '0';
}

// Validates one complete header line (without its terminator) and appends it.
bool add_header_line(std::string_view line, std::vector<header>& out, const head_limits& limits, head_error& err) {
  if (is_ows(line.front())) {
    err = {400, "obs-fold or leading whitespace in header line"};
    return false;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) {
    err = {400, "header line without colon"};
    return false;
  }
  const std::string_view name = line.substr(0, colon);
  if (name.empty()) {
    err = {400, "empty header name"};
    return false;
  }
  if (is_ows(name.back())) {
    err = {400, "whitespace between header name and colon"};
    return false;
  }
  if (!is_token(name)) {
    err = {400, "invalid header name"};
    return false;
  }
  if (out.size() >= limits.max_headers) {
    err = {431, "too many headers"};
    return false;
  }
  // Control bytes were rejected while scanning; obs-text (0x80-0xff) is allowed in values.
  out.push_back(header{std::string(name), std::string(trim_ows(line.substr(colon + 1)))});
  return true;
}

// Splits `buf` into lines up to the blank line that ends the head. Errors found in a
// prefix are errors in every extension of it, so a prefix of a valid head is never an error.
scanned_head scan_head(std::string_view buf, const head_limits& limits, bool is_request) {
  scanned_head out;
  out.headers.reserve(16);  // typical heads have fewer: one allocation, no regrowth
  const int line_status_start = is_request ? 414 : 400;
  const int line_status_header = is_request ? 431 : 400;
  std::size_t pos = 0;
  // RFC 9112 section 2.2: a server should ignore empty lines before the request line.
  if (is_request) {
    while (pos < buf.size()) {
      if (buf[pos] == '\n') {
        ++pos;
      } else if (buf[pos] == '\r') {
        if (pos + 1 >= buf.size()) {
          return out;
        }
        if (buf[pos + 1] != '\n') {
          out.status = parse_status::error;
          out.err = {400, "bare CR"};
          return out;
        }
        pos += 2;
      } else {
        break;
      }
      if (pos > limits.max_line_bytes) {
        out.status = parse_status::error;
        out.err = {400, "too many empty lines before the request line"};
        return out;
      }
    }
  }
  const std::size_t head_start = pos;
  bool have_start = false;
  std::size_t line_start = pos;
  for (std::size_t i = pos; i < buf.size(); ++i) {
    // Ordinary bytes below both length limits need no check: skip them with one table
    // lookup each. Any other byte (CR, LF, a control byte, or one at a limit) takes the
    // full path below, so the result is the same as checking every byte there.
    const std::size_t plain_until =
        std::min({buf.size(), head_start + limits.max_head_bytes, line_start + limits.max_line_bytes});
    while (i < plain_until && !needs_check[static_cast<unsigned char>(buf[i])]) {
      ++i;
    }
    if (i >= buf.size()) {
      break;
    }
    const auto c = static_cast<unsigned char>(buf[i]);
    if (i - head_start + 1 > limits.max_head_bytes) {
      out.status = parse_status::error;
      out.err = {is_request ? 431 : 400, "head too large"};
      return out;
    }
    if (c == '\r') {
      if (i + 1 >= buf.size()) {
        return out;  // the LF may still come
      }
      if (buf[i + 1] != '\n') {
        out.status = parse_status::error;
        out.err = {400, "bare CR"};
        return out;
      }
      continue;  // the LF ends the line on the next iteration
    }
    if (c != '\n') {
      if (is_ctl(c) && c != '\t') {
        out.status = parse_status::error;
        out.err = {400, c == 0 ? "NUL byte in head" : "control byte in head"};
        return out;
      }
      if (i - line_start + 1 > limits.max_line_bytes) {
        out.status = parse_status::error;
        out.err = have_start
                      ? head_error{line_status_header, "header line too long"}
                      : head_error{line_status_start, is_request ? "request line too long" : "status line too long"};
        return out;
      }
      continue;
    }
    // c == '\n': the line is [line_start, end) without its CR.
    std::size_t end = i;
    if (end > line_start && buf[end - 1] == '\r') {
      --end;
    }
    const std::string_view line = buf.substr(line_start, end - line_start);
    line_start = i + 1;
    if (!have_start) {
      if (line.empty()) {
        out.status = parse_status::error;
        out.err = {400, is_request ? "missing request line" : "missing status line"};
        return out;
      }
      out.start_line = line;
      have_start = true;
      continue;
    }
    if (line.empty()) {
      out.status = parse_status::complete;
      out.consumed = i + 1;
      return out;
    }
    if (!add_header_line(line, out.headers, limits, out.err)) {
      out.status = parse_status::error;
      return out;
    }
  }
  return out;
}

// ---- transfer-coding and content-length analysis ----

struct te_analysis {
  bool present = false;
  bool chunked_final = false;
  int error_status = 0;  // 0 when fine
  std::string error;
};

bool known_coding(std::string_view c) {
  return c == "chunked" || c == "gzip" || c == "x-gzip" || c == "deflate" || c == "compress" || c == "x-compress";
}

te_analysis analyse_transfer_encoding(const std::vector<header>& headers) {
  te_analysis te;
  bool seen_chunked = false;
  std::size_t codings = 0;
  for (const auto& h : headers) {
    if (!iequals(h.name, "transfer-encoding")) {
      continue;
    }
    te.present = true;
    std::string_view rest = h.value;
    while (true) {
      const auto comma = rest.find(',');
      std::string_view element = trim_ows(rest.substr(0, comma));
      if (!element.empty()) {
        std::string_view name = element;
        std::string_view params;
        const auto semi = element.find(';');
        if (semi != std::string_view::npos) {
          name = trim_ows(element.substr(0, semi));
          params = element.substr(semi);
        }
        if (!is_token(name)) {
          te.error_status = 400;
          te.error = "invalid Transfer-Encoding '" + h.value + "'";
          return te;
        }
        const std::string coding = lower(name);
        if (!known_coding(coding)) {
          te.error_status = 501;
          te.error = "unsupported transfer coding '" + std::string(name) + "'";
          return te;
        }
        if (seen_chunked) {
          te.error_status = 400;
          te.error = "transfer coding after chunked";
          return te;
        }
        if (coding == "chunked") {
          if (!params.empty()) {
            te.error_status = 400;
            te.error = "chunked takes no parameters";
            return te;
          }
          seen_chunked = true;
        }
        ++codings;
      }
      if (comma == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(comma + 1);
    }
  }
  if (te.present && codings == 0) {
    te.error_status = 400;
    te.error = "empty Transfer-Encoding";
    return te;
  }
  te.chunked_final = seen_chunked;
  return te;
}

struct cl_analysis {
  bool present = false;
  std::uint64_t length = 0;
  std::string error;  // non-empty: 400
};

cl_analysis analyse_content_length(const std::vector<header>& headers) {
  cl_analysis cl;
  const header* first = nullptr;
  for (const auto& h : headers) {
    if (!iequals(h.name, "content-length")) {
      continue;
    }
    if (first != nullptr) {
      cl.error = first->value == h.value ? "repeated Content-Length" : "conflicting Content-Length";
      return cl;
    }
    first = &h;
  }
  if (first == nullptr) {
    return cl;
  }
  cl.present = true;
  const std::string& v = first->value;
  bool digits = !v.empty() && v.size() <= 19;
  for (char c : v) {
    digits = digits && is_digit(c);
  }
  std::uint64_t n = 0;
  if (digits) {
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    digits = ec == std::errc{} && p == v.data() + v.size();
  }
  if (!digits) {
    cl.error = "invalid Content-Length '" + v.substr(0, 64) + "'";
    return cl;
  }
  cl.length = n;
  return cl;
}

framing_result framing_error(int status, std::string reason) {
  framing_result r;
  r.error_status = status;
  r.error = std::move(reason);
  return r;
}

framing_result framing_ok(body_kind kind, std::uint64_t length = 0) {
  framing_result r;
  r.framing = body_framing{kind, length};
  return r;
}

bool valid_reg_name(std::string_view host) {
  if (host.empty()) {
    return false;
  }
  for (char c : host) {
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_' && c != '~') {
      return false;
    }
  }
  return true;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) {
    return std::nullopt;
  }
  unsigned value = 0;
  for (char c : s) {
    if (!is_digit(c)) {
      return std::nullopt;
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

// ---- public API ----

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) {
      return false;
    }
  }
  return true;
}

const header* find_header(const std::vector<header>& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) {
      return &h;
    }
  }
  return nullptr;
}

bool header_has_token(std::string_view value, std::string_view token) {
  while (true) {
    const auto comma = value.find(',');
    if (iequals(trim_ows(value.substr(0, comma)), token)) {
      return true;
    }
    if (comma == std::string_view::npos) {
      return false;
    }
    value.remove_prefix(comma + 1);
  }
}

request_parse_result parse_request_head(std::string_view buf, const head_limits& limits) {
  request_parse_result r;
  auto fail = [&r](int status, std::string reason) {
    r.status = parse_status::error;
    r.error_status = status;
    r.error = std::move(reason);
    r.head = {};
    return r;
  };
  scanned_head s = scan_head(buf, limits, true);
  if (s.status == parse_status::error) {
    return fail(s.err.status, std::move(s.err.reason));
  }
  if (s.status == parse_status::incomplete) {
    return r;
  }
  // request-line = method SP request-target SP HTTP-version, single spaces only.
  const std::string_view line = s.start_line;
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    return fail(400, "malformed request line");
  }
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    return fail(400, "malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) {
    return fail(400, "invalid method");
  }
  if (target.empty()) {
    return fail(400, "empty request target");
  }
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return fail(400, "invalid character in request target");
    }
  }
  const int minor = parse_version(version);
  if (minor == -1) {
    return fail(400, "malformed HTTP version");
  }
  if (minor == -2) {
    return fail(505, "HTTP version not supported");
  }
  // RFC 9112 section 3.2: more than one Host is a 400.
  int hosts = 0;
  for (const auto& h : s.headers) {
    hosts += iequals(h.name, "host") ? 1 : 0;
  }
  if (hosts > 1) {
    return fail(400, "repeated Host header");
  }
  r.status = parse_status::complete;
  r.consumed = s.consumed;
  r.head.method = std::string(method);
  r.head.target = std::string(target);
  r.head.version_minor = minor;
  r.head.headers = std::move(s.headers);
  return r;
}

response_parse_result parse_response_head(std::string_view buf, const head_limits& limits) {
  response_parse_result r;
  auto fail = [&r](std::string reason) {
    r.status = parse_status::error;
    r.error = std::move(reason);
    r.head = {};
    return r;
  };
  scanned_head s = scan_head(buf, limits, false);
  if (s.status == parse_status::error) {
    return fail(std::move(s.err.reason));
  }
  if (s.status == parse_status::incomplete) {
    return r;
  }
  // status-line = HTTP-version SP 3DIGIT SP [reason]; a missing "SP reason" is tolerated.
  const std::string_view line = s.start_line;
  const int minor = parse_version(line.substr(0, 8));
  if (minor == -1) {
    return fail("malformed status line");
  }
  if (minor == -2) {
    return fail("unsupported HTTP version in response");
  }
  if (line.size() < 12 || line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) ||
      line[9] == '0') {
    return fail("malformed status line");
  }
  if (line.size() > 12 && line[12] != ' ') {
    return fail("malformed status line");
  }
  r.status = parse_status::complete;
  r.consumed = s.consumed;
  r.head.version_minor = minor;
  r.head.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  r.head.reason = line.size() > 12 ? std::string(line.substr(13)) : std::string();
  r.head.headers = std::move(s.headers);
  return r;
}

framing_result request_body_framing(const request_head& head) {
  const te_analysis te = analyse_transfer_encoding(head.headers);
  const cl_analysis cl = analyse_content_length(head.headers);
  if (te.present && (cl.present || !cl.error.empty())) {
    return framing_error(400, "both Transfer-Encoding and Content-Length");
  }
  if (te.present) {
    if (te.error_status != 0) {
      return framing_error(te.error_status, te.error);
    }
    if (head.version_minor == 0) {
      return framing_error(400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    if (!te.chunked_final) {
      return framing_error(400, "Transfer-Encoding does not end in chunked");
    }
    return framing_ok(body_kind::chunked);
  }
  if (!cl.error.empty()) {
    return framing_error(400, cl.error);
  }
  if (cl.present) {
    return framing_ok(body_kind::content_length, cl.length);
  }
  return framing_ok(body_kind::none);
}

framing_result response_body_framing(const response_head& head, std::string_view request_method) {
  if (request_method == "HEAD" || (head.status >= 100 && head.status < 200) || head.status == 204 ||
      head.status == 304 || (request_method == "CONNECT" && head.status >= 200 && head.status < 300)) {
    return framing_ok(body_kind::none);
  }
  const te_analysis te = analyse_transfer_encoding(head.headers);
  const cl_analysis cl = analyse_content_length(head.headers);
  if (te.present && (cl.present || !cl.error.empty())) {
    return framing_error(400, "both Transfer-Encoding and Content-Length");
  }
  if (te.present) {
    if (te.error_status != 0) {
      return framing_error(te.error_status, te.error);
    }
    if (head.version_minor == 0) {
      return framing_error(400, "Transfer-Encoding in an HTTP/1.0 response");
    }
    // RFC 9112 section 6.3: a response whose final coding is not chunked runs until close.
    return framing_ok(te.chunked_final ? body_kind::chunked : body_kind::until_close);
  }
  if (!cl.error.empty()) {
    return framing_error(400, cl.error);
  }
  if (cl.present) {
    return framing_ok(body_kind::content_length, cl.length);
  }
  return framing_ok(body_kind::until_close);
}

// ---- chunked_scanner ----

namespace {
constexpr std::size_t max_chunk_ext_bytes = 4096;
constexpr std::size_t max_trailer_line_bytes = 8 * 1024;
constexpr std::size_t max_trailer_bytes = 16 * 1024;

}  // namespace

void chunked_scanner::skip_data(std::uint64_t n) {
  if (state_ != state::data || n > remaining_) {
    error_ = "chunk data skipped past the chunk";  // a caller's bug: fail the body, never misframe it
    return;
  }
  remaining_ -= n;
  if (remaining_ == 0) {
    state_ = state::data_cr;
  }
}

chunked_scanner::result chunked_scanner::feed(std::string_view data) {
  result r;
  if (state_ == state::done) {
    r.done = true;
    return r;
  }
  if (!error_.empty()) {
    r.error = true;
    return r;
  }
  auto fail = [&](std::size_t at, const char* why) {
    error_ = why;
    r.consumed = at;
    r.error = true;
    return r;
  };
  if (state_ == state::trailer_start || state_ == state::trailer_line || state_ == state::trailer_lf ||
      state_ == state::final_lf) {
    r.trailer_from = 0;
  }
  std::size_t i = 0;
  while (i < data.size()) {
    const char c = data[i];
    const auto u = static_cast<unsigned char>(c);
    switch (state_) {
      case state::size: {
        const int v = hex_value(c);
        if (v >= 0) {
          // 16 hex digits fill 64 bits exactly, so bounding the digits bounds the value.
          if (++size_digits_ > 16) {
            return fail(i, "chunk size too long");
          }
          remaining_ = (remaining_ << 4) | static_cast<std::uint64_t>(v);
        } else if (size_digits_ == 0) {
          return fail(i, "missing chunk size");
        } else if (c == ';') {
          line_len_ = 0;
          state_ = state::size_ext;
        } else if (c == '\r') {
          state_ = state::size_lf;
        } else {
          return fail(i, "invalid byte after chunk size");
        }
        ++i;
        break;
      }
      case state::size_ext:
        if (c == '\r') {
          state_ = state::size_lf;
        } else if (is_ctl(u) && c != '\t') {
          return fail(i, "control byte in chunk extension");
        } else if (++line_len_ > max_chunk_ext_bytes) {
          return fail(i, "chunk extension too long");
        }
        ++i;
        break;
      case state::size_lf:
        if (c != '\n') {
          return fail(i, "bare CR in chunk size line");
        }
        ++i;
        size_digits_ = 0;
        size_line_seen_ = true;
        if (remaining_ == 0) {
          trailer_bytes_ = 0;
          r.trailer_from = i;
          state_ = state::trailer_start;
        } else {
          state_ = state::data;
        }
        break;
      case state::data: {
        const std::uint64_t avail = data.size() - i;
        const std::uint64_t take = remaining_ < avail ? remaining_ : avail;
        remaining_ -= take;
        i += static_cast<std::size_t>(take);
        if (remaining_ == 0) {
          state_ = state::data_cr;
        }
        break;
      }
      case state::data_cr:
        if (c != '\r') {
          return fail(i, "missing CRLF after chunk data");
        }
        state_ = state::data_lf;
        ++i;
        break;
      case state::data_lf:
        if (c != '\n') {
          return fail(i, "missing CRLF after chunk data");
        }
        state_ = state::size;
        ++i;
        break;
      case state::trailer_start:
        if (++trailer_bytes_ > max_trailer_bytes) {
          return fail(i, "trailer section too large");
        }
        if (c == '\r') {
          state_ = state::final_lf;
          ++i;
          break;
        }
        if (c == ' ' || c == '\t') {
          return fail(i, "obs-fold in trailer section");
        }
        line_len_ = 0;
        trailer_colon_ = false;
        state_ = state::trailer_line;
        --trailer_bytes_;  // counted again below
        break;             // re-examine this byte as the start of a trailer line
      case state::trailer_line:
        if (++trailer_bytes_ > max_trailer_bytes) {
          return fail(i, "trailer section too large");
        }
        if (c == '\r') {
          if (!trailer_colon_) {
            return fail(i, "trailer line without colon");
          }
          state_ = state::trailer_lf;
        } else if (is_ctl(u) && c != '\t') {
          return fail(i, "control byte in trailer");
        } else if (++line_len_ > max_trailer_line_bytes) {
          return fail(i, "trailer line too long");
        } else if (!trailer_colon_) {
          if (c == ':') {
            if (line_len_ == 1) {
              return fail(i, "empty trailer name");
            }
            trailer_colon_ = true;
          } else if (!is_tchar(u)) {
            return fail(i, "invalid trailer name");
          }
        }
        ++i;
        break;
      case state::trailer_lf:
        if (c != '\n') {
          return fail(i, "bare CR in trailer");
        }
        if (++trailer_bytes_ > max_trailer_bytes) {
          return fail(i, "trailer section too large");
        }
        state_ = state::trailer_start;
        ++i;
        break;
      case state::final_lf:
        if (c != '\n') {
          return fail(i, "bare CR after last chunk");
        }
        state_ = state::done;
        r.consumed = i + 1;
        r.done = true;
        return r;
      case state::done:
        r.consumed = i;
        r.done = true;
        return r;
    }
  }
  r.consumed = i;
  return r;
}

chunked_start check_chunked_start(std::string_view buffered) {
  chunked_start out;
  chunked_scanner scanner;
  // Only the first line matters: a valid prefix needs no more than its extension bound.
  const auto r = scanner.feed(buffered.substr(0, std::min<std::size_t>(buffered.size(), 8 * 1024)));
  if (r.error) {
    out.status = parse_status::error;
    out.error = "malformed chunked body: " + scanner.error_reason();
  } else if (scanner.size_line_seen()) {
    out.status = parse_status::complete;
  }
  return out;
}

namespace {

// Sorted, lower-case: the names is_forbidden_trailer refuses besides hop-by-hop ones.
constexpr std::array<std::string_view, 31> forbidden_trailers = {
    "age",
    "authentication-info",
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-range",
    "content-type",
    "cookie",
    "date",
    "expect",
    "expires",
    "host",
    "keep-alive",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authentication-info",
    "proxy-authorization",
    "proxy-connection",
    "range",
    "retry-after",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "vary",
    "www-authenticate",
};

}  // namespace

bool is_forbidden_trailer(std::string_view name, const std::vector<header>& head_headers) {
  for (auto f : forbidden_trailers) {
    if (iequals(name, f)) {
      return true;
    }
  }
  if (name.size() >= 3 && iequals(name.substr(0, 3), "if-")) {
    return true;  // conditionals: If-Match, If-None-Match, If-Modified-Since, ...
  }
  return is_hop_by_hop(name, head_headers);
}

void filter_trailers(std::string_view section, const std::vector<header>& head_headers, std::string& out) {
  while (!section.empty()) {
    const auto eol = section.find('\n');
    const std::string_view line = section.substr(0, eol == std::string_view::npos ? section.size() : eol + 1);
    section.remove_prefix(line.size());
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      out.append(line);  // the final CRLF
      continue;
    }
    if (!is_forbidden_trailer(line.substr(0, colon), head_headers)) {
      out.append(line);
    }
  }
}

// ---- authorities and targets ----

std::optional<authority> parse_authority(std::string_view s, std::uint16_t default_port) {
  authority a;
  std::string_view port_text;
  bool has_port = false;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    const std::string_view host = s.substr(1, close - 1);
    if (!valid_ipv6(host)) {
      return std::nullopt;
    }
    a.host = std::string(host);
    const std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return std::nullopt;
      }
      has_port = true;
      port_text = rest.substr(1);
    }
  } else {
    const auto colon = s.find(':');
    const std::string_view host = s.substr(0, colon);
    if (!valid_reg_name(host)) {
      return std::nullopt;
    }
    a.host = std::string(host);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = s.substr(colon + 1);
    }
  }
  if (has_port) {
    const auto port = parse_port(port_text);
    if (!port) {
      return std::nullopt;
    }
    a.port = *port;
  } else {
    if (default_port == 0) {
      return std::nullopt;
    }
    a.port = default_port;
  }
  return a;
}

std::optional<absolute_target> parse_absolute_target(std::string_view target) {
  const auto colon = target.find(':');
  if (colon == std::string_view::npos || colon == 0 || !is_alpha(target[0])) {
    return std::nullopt;
  }
  const std::string_view scheme = target.substr(0, colon);
  for (char c : scheme) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') {
      return std::nullopt;
    }
  }
  std::string_view rest = target.substr(colon + 1);
  if (rest.substr(0, 2) != "//") {
    return std::nullopt;
  }
  rest.remove_prefix(2);
  if (rest.find('#') != std::string_view::npos) {
    return std::nullopt;
  }
  const auto auth_end = rest.find_first_of("/?");
  const std::string_view auth = rest.substr(0, auth_end);
  if (auth.find('@') != std::string_view::npos) {
    return std::nullopt;
  }
  absolute_target t;
  t.scheme = lower(scheme);
  const std::uint16_t default_port = t.scheme == "http" ? 80 : (t.scheme == "https" ? 443 : 0);
  auto where = parse_authority(auth, default_port);
  if (!where) {
    return std::nullopt;
  }
  t.where = std::move(*where);
  if (auth_end == std::string_view::npos) {
    t.origin_form = "/";
  } else if (rest[auth_end] == '?') {
    t.origin_form = "/" + std::string(rest.substr(auth_end));
  } else {
    t.origin_form = std::string(rest.substr(auth_end));
  }
  return t;
}

std::string_view authority_of(std::string_view target) {
  const auto start = target.find("://");
  if (start == std::string_view::npos) {
    return {};
  }
  target.remove_prefix(start + 3);
  return target.substr(0, target.find_first_of("/?#"));
}

std::string format_authority(std::string_view host, std::uint16_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out.reserve(host.size() + 8);
    out += '[';
    out += host;
    out += ']';
  } else {
    out = std::string(host);
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

bool is_hop_by_hop(std::string_view name, const std::vector<header>& headers) {
  // Framing and routing headers stay even when Connection names them: the gateway forwards
  // bodies as-is, and "Connection: content-length" must not strip the framing.
  if (iequals(name, "transfer-encoding") || iequals(name, "content-length") || iequals(name, "host")) {
    return false;
  }
  static constexpr std::array<std::string_view, 7> fixed = {
      "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "upgrade"};
  for (auto f : fixed) {
    if (iequals(name, f)) {
      return true;
    }
  }
  for (const auto& h : headers) {
    if (iequals(h.name, "connection") && header_has_token(h.value, name)) {
      return true;
    }
  }
  return false;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

}  // namespace exitpool::proto
