#include "proto/http_head.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace exitpool::proto {
namespace {

// ---- request heads: valid ----

struct valid_request_case {
  const char* name;
  std::string input;
  std::string method;
  std::string target;
  int minor;
  std::size_t header_count;
};

TEST(http_request_head, parses_valid_heads) {
  const std::vector<valid_request_case> cases = {
      {"absolute_form", "GET http://example.com/a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", "GET",
       "http://example.com/a?b=1", 1, 1},
      {"connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "CONNECT", "example.com:443", 1,
       1},
      {"http10", "GET http://a/ HTTP/1.0\r\n\r\n", "GET", "http://a/", 0, 0},
      {"bare_lf", "GET / HTTP/1.1\nHost: a\nX: y\n\n", "GET", "/", 1, 2},
      {"mixed_line_endings", "GET / HTTP/1.1\r\nHost: a\n\r\n", "GET", "/", 1, 1},
      {"extension_method", "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", "PURGE", "/x", 1, 1},
      {"leading_empty_lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/", 1, 1},
      {"empty_value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", "GET", "/", 1, 2},
      {"obs_text_value", "GET / HTTP/1.1\r\nHost: a\r\nX-U: caf\xc3\xa9\r\n\r\n", "GET", "/", 1, 2},
      {"tab_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n", "GET", "/", 1, 2},
      {"asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS", "*", 1, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = parse_request_head(c.input);
    ASSERT_EQ(r.status, parse_status::complete) << r.error;
    EXPECT_EQ(r.consumed, c.input.size());
    EXPECT_EQ(r.head.method, c.method);
    EXPECT_EQ(r.head.target, c.target);
    EXPECT_EQ(r.head.version_minor, c.minor);
    EXPECT_EQ(r.head.headers.size(), c.header_count);
  }
}

TEST(http_request_head, trims_values_and_keeps_order) {
  const std::string in = "GET / HTTP/1.1\r\nHost:  a.example \t\r\nX-B:b\r\nx-a: 1 2 \r\n\r\nBODY";
  const auto r = parse_request_head(in);
  ASSERT_EQ(r.status, parse_status::complete);
  EXPECT_EQ(r.consumed, in.size() - 4);
  ASSERT_EQ(r.head.headers.size(), 3u);
  EXPECT_EQ(r.head.headers[0].name, "Host");
  EXPECT_EQ(r.head.headers[0].value, "a.example");
  EXPECT_EQ(r.head.headers[1].value, "b");
  EXPECT_EQ(r.head.headers[2].name, "x-a");
  EXPECT_EQ(r.head.headers[2].value, "1 2");
  ASSERT_NE(find_header(r.head.headers, "X-A"), nullptr);
  EXPECT_EQ(find_header(r.head.headers, "X-A")->value, "1 2");
  EXPECT_EQ(find_header(r.head.headers, "missing"), nullptr);
}

// ---- request heads: malformed ----

struct bad_request_case {
  const char* name;
  std::string input;
  int status;
};

std::string big(std::size_t n, char c = 'a') {
  return std::string(n, c);
}

TEST(http_request_head, rejects_malformed_heads) {
  const std::string ok_end = "Host: a\r\n\r\n";
  const std::vector<bad_request_case> cases = {
      {"bare_cr_in_request_line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
      {"bare_cr_in_header", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400},
      {"bare_cr_in_value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
      {"nul_in_value", std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 26), 400},
      {"nul_in_target", std::string("GET /\0 HTTP/1.1\r\n\r\n", 19), 400},
      {"control_in_name", "GET / HTTP/1.1\r\nX\x01: a\r\n\r\n", 400},
      {"control_in_value", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400},
      {"escape_in_value", "GET / HTTP/1.1\r\nX: \x1b[31m\r\n\r\n", 400},
      {"obs_fold", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
      {"obs_fold_tab", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 400},
      {"leading_space_first_header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
      {"space_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"tab_before_colon", "GET / HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n", 400},
      {"no_colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400},
      {"empty_name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 400},
      {"bad_name_char", "GET / HTTP/1.1\r\nX(y): a\r\n\r\n", 400},
      {"name_with_slash", "GET / HTTP/1.1\r\nX/Y: a\r\n\r\n", 400},
      {"method_lowercase_ok_but_bad_char", "GE(T / HTTP/1.1\r\n\r\n", 400},
      {"method_with_at", "G@T / HTTP/1.1\r\n\r\n", 400},
      {"empty_method", " / HTTP/1.1\r\n\r\n", 400},
      {"double_space_after_method", "GET  / HTTP/1.1\r\n\r\n", 400},
      {"double_space_before_version", "GET /  HTTP/1.1\r\n\r\n", 400},
      {"tab_separator", "GET\t/ HTTP/1.1\r\n\r\n", 400},
      {"trailing_space", "GET / HTTP/1.1 \r\n\r\n", 400},
      {"missing_version", "GET /\r\n\r\n", 400},
      {"only_method", "GET\r\n\r\n", 400},
      {"lowercase_version", "GET / http/1.1\r\n\r\n", 400},
      {"version_no_minor", "GET / HTTP/1\r\n\r\n", 400},
      {"version_two_digit_minor", "GET / HTTP/1.10\r\n\r\n", 400},
      {"version_garbage", "GET / HTTP/x.y\r\n\r\n", 400},
      {"version_2", "GET / HTTP/2.0\r\n\r\n", 505},
      {"version_1_2", "GET / HTTP/1.2\r\n\r\n", 505},
      {"version_0_9", "GET / HTTP/0.9\r\n\r\n", 505},
      {"version_3", "GET / HTTP/3.0\r\n\r\n", 505},
      {"space_in_target", "GET /a b HTTP/1.1\r\n\r\n", 400},
      {"non_ascii_target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", 400},
      {"del_in_target", "GET /\x7f HTTP/1.1\r\n\r\n", 400},
      {"empty_request_line", "\r\nHost: a\r\n\r\n" + std::string(), 400},
      {"repeated_host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"repeated_host_same", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400},
      {"request_line_too_long", "GET /" + big(17 * 1024) + " HTTP/1.1\r\n\r\n", 414},
      {"request_line_too_long_unterminated", "GET /" + big(17 * 1024), 414},
      {"header_line_too_long", "GET / HTTP/1.1\r\nX: " + big(17 * 1024) + "\r\n\r\n", 431},
      {"header_too_long_unterminated", "GET / HTTP/1.1\r\nX: " + big(17 * 1024), 431},
      {"head_too_large",
       [] {
         std::string s = "GET / HTTP/1.1\r\n";
         for (int i = 0; i < 90; ++i) {
           s += "X-" + std::to_string(i) + ": " + std::string(1000, 'v') + "\r\n";
         }
         return s + "\r\n";
       }(),
       431},
      {"too_many_headers",
       [] {
         std::string s = "GET / HTTP/1.1\r\n";
         for (int i = 0; i < 101; ++i) {
           s += "X-" + std::to_string(i) + ": v\r\n";
         }
         return s + "\r\n";
       }(),
       431},
      {"binary_garbage", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400},
      {"bare_cr_line_end", "GET / HTTP/1.1\r\r\n\r\n", 400},
  };
  ASSERT_GE(cases.size(), 40u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = parse_request_head(c.input);
    ASSERT_EQ(r.status, parse_status::error);
    EXPECT_EQ(r.error_status, c.status) << r.error;
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(http_request_head, honours_custom_limits) {
  head_limits limits;
  limits.max_headers = 2;
  EXPECT_EQ(parse_request_head("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", limits).status, parse_status::complete);
  const auto r = parse_request_head("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits);
  EXPECT_EQ(r.status, parse_status::error);
  EXPECT_EQ(r.error_status, 431);

  head_limits tiny;
  tiny.max_line_bytes = 10;
  EXPECT_EQ(parse_request_head("GET /a HTTP/1.1\r\n\r\n", tiny).error_status, 414);
  tiny.max_line_bytes = 14;  // "GET /a HTTP/1.1" is 15
  EXPECT_EQ(parse_request_head("GET /a HTTP/1.1\r\n\r\n", tiny).error_status, 414);
  tiny.max_line_bytes = 15;
  EXPECT_EQ(parse_request_head("GET /a HTTP/1.1\r\n\r\n", tiny).status, parse_status::complete);

  head_limits small_head;
  small_head.max_head_bytes = 19;  // exactly "GET /a HTTP/1.1\r\n\r\n"
  EXPECT_EQ(parse_request_head("GET /a HTTP/1.1\r\n\r\n", small_head).status, parse_status::complete);
  small_head.max_head_bytes = 18;
  EXPECT_EQ(parse_request_head("GET /a HTTP/1.1\r\n\r\n", small_head).error_status, 431);
}

TEST(http_request_head, every_prefix_of_a_valid_head_is_incomplete) {
  const std::vector<std::string> heads = {
      "GET http://example.com/a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
      "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic YTpi\r\n\r\n",
      "\r\nGET / HTTP/1.0\nX: y\n\n",
  };
  for (const auto& h : heads) {
    for (std::size_t n = 0; n < h.size(); ++n) {
      const auto r = parse_request_head(std::string_view(h).substr(0, n));
      ASSERT_EQ(r.status, parse_status::incomplete) << "prefix " << n << " of " << h << ": " << r.error;
    }
    EXPECT_EQ(parse_request_head(h).status, parse_status::complete);
  }
}

// ---- response heads ----

TEST(http_response_head, parses_valid_heads) {
  struct row {
    std::string in;
    int status;
    std::string reason;
    int minor;
  };
  const std::vector<row> rows = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "OK", 1},
      {"HTTP/1.0 404 Not Found\r\n\r\n", 404, "Not Found", 0},
      {"HTTP/1.1 204 \r\n\r\n", 204, "", 1},
      {"HTTP/1.1 204\r\n\r\n", 204, "", 1},
      {"HTTP/1.1 407 Proxy Authentication Required\nProxy-Authenticate: Basic\n\n", 407,
       "Proxy Authentication Required", 1},
      {"HTTP/1.1 200 Connection\testablished\r\n\r\n", 200, "Connection\testablished", 1},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.in);
    const auto p = parse_response_head(r.in);
    ASSERT_EQ(p.status, parse_status::complete) << p.error;
    EXPECT_EQ(p.consumed, r.in.size());
    EXPECT_EQ(p.head.status, r.status);
    EXPECT_EQ(p.head.reason, r.reason);
    EXPECT_EQ(p.head.version_minor, r.minor);
  }
}

TEST(http_response_head, rejects_malformed_heads) {
  const std::vector<std::string> rows = {
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 abc OK\r\n\r\n",
      "HTTP/1.1  200 OK\r\n\r\n",
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.2 200 OK\r\n\r\n",
      "http/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 099 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n",
      "HTTP/1.1 200 OK\rX: y\r\n\r\n",
      "ICY 200 OK\r\n\r\n",
      std::string("HTTP/1.1 200 OK\r\nX: \0\r\n\r\n", 25),
  };
  for (const auto& in : rows) {
    SCOPED_TRACE(in);
    const auto p = parse_response_head(in);
    EXPECT_EQ(p.status, parse_status::error);
    EXPECT_FALSE(p.error.empty());
  }
}

TEST(http_response_head, every_prefix_is_incomplete) {
  const std::string h = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::size_t n = 0; n < h.size(); ++n) {
    ASSERT_EQ(parse_response_head(std::string_view(h).substr(0, n)).status, parse_status::incomplete) << n;
  }
}

// ---- body framing ----

request_head req(std::vector<header> headers, int minor = 1, std::string method = "POST") {
  request_head h;
  h.method = std::move(method);
  h.target = "http://a/";
  h.version_minor = minor;
  h.headers = std::move(headers);
  return h;
}

struct framing_case {
  const char* name;
  std::vector<header> headers;
  int minor;
  std::optional<body_kind> kind;  // empty: error
  std::uint64_t length;
  int error_status;
};

TEST(http_framing, request_bodies) {
  const std::vector<framing_case> cases = {
      {"none", {}, 1, body_kind::none, 0, 0},
      {"content_length", {{"Content-Length", "42"}}, 1, body_kind::content_length, 42, 0},
      {"content_length_zero", {{"content-length", "0"}}, 1, body_kind::content_length, 0, 0},
      {"content_length_max",
       {{"Content-Length", "9999999999999999999"}},
       1,
       body_kind::content_length,
       9999999999999999999ull,
       0},
      {"chunked", {{"Transfer-Encoding", "chunked"}}, 1, body_kind::chunked, 0, 0},
      {"chunked_case", {{"Transfer-Encoding", "CHUNKED"}}, 1, body_kind::chunked, 0, 0},
      {"gzip_chunked", {{"Transfer-Encoding", "gzip, chunked"}}, 1, body_kind::chunked, 0, 0},
      {"split_te", {{"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"}}, 1, body_kind::chunked, 0, 0},
      {"empty_list_elements", {{"Transfer-Encoding", ", chunked"}}, 1, body_kind::chunked, 0, 0},
      {"cl_and_te", {{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}, 1, std::nullopt, 0, 400},
      {"te_and_bad_cl", {{"Transfer-Encoding", "chunked"}, {"Content-Length", "x"}}, 1, std::nullopt, 0, 400},
      {"repeated_cl_same", {{"Content-Length", "5"}, {"Content-Length", "5"}}, 1, std::nullopt, 0, 400},
      {"repeated_cl_conflict", {{"Content-Length", "5"}, {"Content-Length", "6"}}, 1, std::nullopt, 0, 400},
      {"cl_list", {{"Content-Length", "5, 5"}}, 1, std::nullopt, 0, 400},
      {"cl_negative", {{"Content-Length", "-1"}}, 1, std::nullopt, 0, 400},
      {"cl_plus", {{"Content-Length", "+5"}}, 1, std::nullopt, 0, 400},
      {"cl_hex", {{"Content-Length", "0x10"}}, 1, std::nullopt, 0, 400},
      {"cl_empty", {{"Content-Length", ""}}, 1, std::nullopt, 0, 400},
      {"cl_inner_space", {{"Content-Length", "1 2"}}, 1, std::nullopt, 0, 400},
      {"cl_overflow", {{"Content-Length", "18446744073709551616"}}, 1, std::nullopt, 0, 400},
      {"cl_too_many_digits", {{"Content-Length", "00000000000000000001"}}, 1, std::nullopt, 0, 400},
      {"te_not_final_chunked", {{"Transfer-Encoding", "chunked, gzip"}}, 1, std::nullopt, 0, 400},
      {"te_gzip_only", {{"Transfer-Encoding", "gzip"}}, 1, std::nullopt, 0, 400},
      {"te_chunked_twice", {{"Transfer-Encoding", "chunked, chunked"}}, 1, std::nullopt, 0, 400},
      {"te_chunked_twice_split",
       {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
       1,
       std::nullopt,
       0,
       400},
      {"te_unknown", {{"Transfer-Encoding", "foo"}}, 1, std::nullopt, 0, 501},
      {"te_unknown_before_chunked", {{"Transfer-Encoding", "foo, chunked"}}, 1, std::nullopt, 0, 501},
      {"te_identity", {{"Transfer-Encoding", "identity"}}, 1, std::nullopt, 0, 501},
      {"te_chunked_suffix", {{"Transfer-Encoding", "chunkedx"}}, 1, std::nullopt, 0, 501},
      {"te_chunked_params", {{"Transfer-Encoding", "chunked;q=1"}}, 1, std::nullopt, 0, 400},
      {"te_empty", {{"Transfer-Encoding", ""}}, 1, std::nullopt, 0, 400},
      {"te_commas_only", {{"Transfer-Encoding", " , "}}, 1, std::nullopt, 0, 400},
      {"te_quoted", {{"Transfer-Encoding", "\"chunked\""}}, 1, std::nullopt, 0, 400},
      {"te_http10", {{"Transfer-Encoding", "chunked"}}, 0, std::nullopt, 0, 400},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto f = request_body_framing(req(c.headers, c.minor));
    if (c.kind) {
      ASSERT_TRUE(f.framing.has_value()) << f.error;
      EXPECT_EQ(f.framing->kind, *c.kind);
      EXPECT_EQ(f.framing->length, c.length);
    } else {
      ASSERT_FALSE(f.framing.has_value());
      EXPECT_EQ(f.error_status, c.error_status) << f.error;
      EXPECT_FALSE(f.error.empty());
    }
  }
}

TEST(http_framing, response_bodies) {
  struct row {
    const char* name;
    int status;
    std::vector<header> headers;
    std::string method;
    std::optional<body_kind> kind;
    std::uint64_t length;
  };
  const std::vector<row> rows = {
      {"head", 200, {{"Content-Length", "10"}}, "HEAD", body_kind::none, 0},
      {"1xx", 100, {}, "GET", body_kind::none, 0},
      {"204", 204, {{"Content-Length", "10"}}, "GET", body_kind::none, 0},
      {"304", 304, {{"Transfer-Encoding", "chunked"}}, "GET", body_kind::none, 0},
      {"connect_2xx", 200, {}, "CONNECT", body_kind::none, 0},
      {"connect_407", 407, {{"Content-Length", "3"}}, "CONNECT", body_kind::content_length, 3},
      {"cl", 200, {{"Content-Length", "3"}}, "GET", body_kind::content_length, 3},
      {"chunked", 200, {{"Transfer-Encoding", "gzip, chunked"}}, "GET", body_kind::chunked, 0},
      {"te_not_chunked", 200, {{"Transfer-Encoding", "gzip"}}, "GET", body_kind::until_close, 0},
      {"close", 200, {}, "GET", body_kind::until_close, 0},
      {"cl_and_te", 200, {{"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}}, "GET", std::nullopt, 0},
      {"bad_cl", 200, {{"Content-Length", "3a"}}, "GET", std::nullopt, 0},
      {"repeated_cl", 200, {{"Content-Length", "3"}, {"Content-Length", "3"}}, "GET", std::nullopt, 0},
      {"unknown_te", 200, {{"Transfer-Encoding", "br, chunked"}}, "GET", std::nullopt, 0},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    response_head h;
    h.status = r.status;
    h.headers = r.headers;
    const auto f = response_body_framing(h, r.method);
    if (r.kind) {
      ASSERT_TRUE(f.framing.has_value()) << f.error;
      EXPECT_EQ(f.framing->kind, *r.kind);
      EXPECT_EQ(f.framing->length, r.length);
    } else {
      EXPECT_FALSE(f.framing.has_value());
      EXPECT_FALSE(f.error.empty());
    }
  }
}

TEST(http_framing, end_to_end_smuggling_shapes) {
  // Whole requests as a client would send them: the head parses, the framing refuses.
  const std::vector<std::pair<std::string, int>> rows = {
      {"POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n", 400},
      {"POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501},
      {"POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 501},
  };
  for (const auto& [in, status] : rows) {
    SCOPED_TRACE(in);
    const auto r = parse_request_head(in);
    ASSERT_EQ(r.status, parse_status::complete) << r.error;
    const auto f = request_body_framing(r.head);
    EXPECT_FALSE(f.framing.has_value());
    EXPECT_EQ(f.error_status, status);
  }
  // Whitespace before the colon never reaches framing at all.
  EXPECT_EQ(parse_request_head("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n").error_status, 400);
}

// ---- chunked scanner ----

struct chunked_case {
  const char* name;
  std::string body;  // the body; a valid one is followed by "NEXT" which must not be consumed
  bool valid;
};

std::vector<chunked_case> chunked_cases() {
  return {
      {"simple", "5\r\nhello\r\n0\r\n\r\n", true},
      {"two_chunks", "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n", true},
      {"uppercase_hex", "a\r\n0123456789\r\n0\r\n\r\n", true},
      {"leading_zeros", "0005\r\nhello\r\n0\r\n\r\n", true},
      {"sixteen_digits", "0000000000000001\r\nx\r\n0\r\n\r\n", true},
      {"empty", "0\r\n\r\n", true},
      {"extension", "5;name=value\r\nhello\r\n0;last\r\n\r\n", true},
      {"extension_quoted", "5;a=\"b c\"\r\nhello\r\n0\r\n\r\n", true},
      {"trailers", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n", true},
      {"data_with_crlf", "4\r\n\r\n\r\n\r\n0\r\n\r\n", true},
      {"seventeen_digits", "00000000000000001\r\nx\r\n0\r\n\r\n", false},
      {"overflow", "10000000000000000\r\n", false},
      {"no_size", "\r\nhello\r\n0\r\n\r\n", false},
      {"negative", "-5\r\nhello\r\n0\r\n\r\n", false},
      {"hex_prefix", "0x5\r\nhello\r\n0\r\n\r\n", false},
      {"space_after_size", "5 \r\nhello\r\n0\r\n\r\n", false},
      {"space_before_size", " 5\r\nhello\r\n0\r\n\r\n", false},
      {"bare_lf_after_size", "5\nhello\r\n0\r\n\r\n", false},
      {"bare_cr_after_size", "5\rhello\r\n0\r\n\r\n", false},
      {"data_too_long", "5\r\nhelloX\r\n0\r\n\r\n", false},
      {"data_bare_lf", "5\r\nhello\n0\r\n\r\n", false},
      {"missing_data_crlf", "5\r\nhello0\r\n\r\n", false},
      {"ext_control", "5;a\x01\r\nhello\r\n0\r\n\r\n", false},
      {"ext_bare_lf", "5;a\nhello\r\n0\r\n\r\n", false},
      {"ext_too_long", "5;" + std::string(5000, 'a') + "\r\nhello\r\n0\r\n\r\n", false},
      {"trailer_obs_fold", "0\r\nX: 1\r\n 2\r\n\r\n", false},
      {"trailer_no_colon", "0\r\nX\r\n\r\n", false},
      {"trailer_empty_name", "0\r\n: 1\r\n\r\n", false},
      {"trailer_bad_name", "0\r\nX Y: 1\r\n\r\n", false},
      {"trailer_bare_lf", "0\r\nX: 1\n\r\n", false},
      {"trailer_nul", std::string("0\r\nX: \0\r\n\r\n", 11), false},
      {"trailer_too_long", "0\r\nX: " + std::string(9000, 'v') + "\r\n\r\n", false},
      {"final_bare_lf", "0\r\n\n", false},
      {"final_bare_cr", "0\r\n\rX", false},
      {"garbage", "zz\r\n", false},
  };
}

TEST(chunked_scanner, whole_and_byte_by_byte) {
  for (const auto& c : chunked_cases()) {
    SCOPED_TRACE(c.name);
    const std::string input = c.body + (c.valid ? "NEXT" : "");
    // In one piece.
    {
      chunked_scanner s;
      const auto r = s.feed(input);
      if (c.valid) {
        EXPECT_FALSE(r.error) << s.error_reason();
        EXPECT_TRUE(r.done);
        EXPECT_EQ(r.consumed, c.body.size());
        // Once done, nothing more belongs to the body.
        const auto again = s.feed("more");
        EXPECT_TRUE(again.done);
        EXPECT_EQ(again.consumed, 0u);
      } else {
        EXPECT_TRUE(r.error);
        EXPECT_FALSE(r.done);
        EXPECT_FALSE(s.error_reason().empty());
      }
    }
    // Byte by byte: every byte before the end is consumed and not done.
    {
      chunked_scanner s;
      std::size_t total = 0;
      bool done = false;
      bool error = false;
      for (std::size_t i = 0; i < input.size() && !done && !error; ++i) {
        const auto r = s.feed(std::string_view(input).substr(i, 1));
        total += r.consumed;
        done = r.done;
        error = r.error;
        if (!done && !error) {
          ASSERT_EQ(r.consumed, 1u) << "at byte " << i;
        }
      }
      if (c.valid) {
        EXPECT_TRUE(done);
        EXPECT_FALSE(error) << s.error_reason();
        EXPECT_EQ(total, c.body.size());
      } else {
        EXPECT_TRUE(error);
        EXPECT_FALSE(done);
      }
    }
  }
}

TEST(chunked_scanner, arbitrary_splits) {
  const std::string body = "1a;x=y\r\n" + std::string(26, 'z') + "\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n";
  for (std::size_t split = 0; split <= body.size(); ++split) {
    chunked_scanner s;
    const auto a = s.feed(std::string_view(body).substr(0, split));
    ASSERT_FALSE(a.error);
    ASSERT_EQ(a.consumed, split);
    ASSERT_EQ(a.done, split == body.size());
    if (split < body.size()) {
      const auto b = s.feed(std::string_view(body).substr(split));
      ASSERT_FALSE(b.error) << s.error_reason();
      ASSERT_TRUE(b.done);
      ASSERT_EQ(b.consumed, body.size() - split);
    }
  }
}

TEST(chunked_scanner, large_chunk_streams_through) {
  chunked_scanner s;
  EXPECT_EQ(s.feed("FFFFFFFFFFFFFFFF\r\n").consumed, 18u);
  const std::string block(1 << 16, 'x');
  for (int i = 0; i < 16; ++i) {
    const auto r = s.feed(block);
    ASSERT_FALSE(r.error);
    ASSERT_FALSE(r.done);
    ASSERT_EQ(r.consumed, block.size());
  }
}

TEST(chunked_scanner, chunk_data_skipped_by_splice) {
  chunked_scanner s;
  EXPECT_EQ(s.data_remaining(), 0u);
  auto r = s.feed("10000\r\nabc");  // a 64 KiB chunk, 3 bytes of it here
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.consumed, 10u);
  EXPECT_EQ(s.data_remaining(), 65536u - 3);
  s.skip_data(65536 - 3);  // moved by splice, never seen
  EXPECT_EQ(s.data_remaining(), 0u);
  r = s.feed("\r\n0\r\n\r\n");
  ASSERT_FALSE(r.error) << s.error_reason();
  EXPECT_TRUE(r.done);
  // Skipping more than the chunk holds fails the body instead of misframing it.
  chunked_scanner t;
  t.feed("4\r\n");
  t.skip_data(5);
  EXPECT_TRUE(t.feed("\r\n0\r\n\r\n").error);
  chunked_scanner u;
  u.skip_data(1);  // outside chunk data
  EXPECT_TRUE(u.feed("0\r\n\r\n").error);
}

TEST(chunked_scanner, error_is_sticky) {
  chunked_scanner s;
  EXPECT_TRUE(s.feed("g\r\n").error);
  EXPECT_TRUE(s.feed("0\r\n\r\n").error);
}

// Feeds `body` in pieces of `step` bytes as copy_body does (keeping what is not
// consumed) and returns the bytes that go out as they are, and the trailer section.
std::pair<std::string, std::string> split_trailers(const std::string& body, std::size_t step) {
  chunked_scanner s;
  std::string pending;
  std::string out;
  std::string trailers;
  for (std::size_t at = 0; at < body.size(); at += step) {
    pending += body.substr(at, step);
    const auto r = s.feed(pending);
    EXPECT_FALSE(r.error) << s.error_reason();
    std::size_t send = r.consumed;
    if (r.trailer_from != std::string_view::npos) {
      send = r.trailer_from;
      trailers += pending.substr(send, r.consumed - send);
    }
    out += pending.substr(0, send);
    pending.erase(0, r.consumed);
    if (r.done) {
      EXPECT_EQ(pending, "");
      break;
    }
  }
  return {out, trailers};
}

TEST(chunked_scanner, tells_where_the_trailer_section_starts) {
  const std::string body = "3\r\nabc\r\n0;x=1\r\nX-A: 1\r\nProxy-Authorization: Basic eA==\r\n\r\n";
  for (std::size_t step : {1u, 2u, 5u, 1000u}) {
    SCOPED_TRACE(step);
    const auto [out, trailers] = split_trailers(body, step);
    EXPECT_EQ(out, "3\r\nabc\r\n0;x=1\r\n");
    EXPECT_EQ(trailers, "X-A: 1\r\nProxy-Authorization: Basic eA==\r\n\r\n");
  }
  const auto [out, trailers] = split_trailers("0\r\n\r\n", 1000);
  EXPECT_EQ(out, "0\r\n");
  EXPECT_EQ(trailers, "\r\n");
}

TEST(trailers, forbidden_fields_are_dropped) {
  const std::vector<header> head = {{"Connection", "X-Hop"}, {"Trailer", "X-A"}};
  std::string out;
  filter_trailers(
      "X-A: 1\r\nProxy-Authorization: Basic eA==\r\nContent-Length: 5\r\ntransfer-encoding: chunked\r\n"
      "Host: evil\r\nAuthorization: x\r\nCookie: c\r\nSet-Cookie: s\r\nX-Hop: 1\r\nConnection: close\r\n"
      "TE: trailers\r\nIf-Match: *\r\nMax-Forwards: 1\r\nContent-Type: a/b\r\nServer-Timing: t;dur=1\r\n"
      "Proxy-Authenticate: Basic\r\nKeep-Alive: 1\r\nTrailer: X-B\r\nX-B:2\r\n\r\n",
      head, out);
  EXPECT_EQ(out, "X-A: 1\r\nServer-Timing: t;dur=1\r\nX-B:2\r\n\r\n");
  out.clear();
  filter_trailers("\r\n", head, out);
  EXPECT_EQ(out, "\r\n");
  for (const char* name : {"proxy-authorization", "PROXY-AUTHORIZATION", "content-length", "Host", "Authorization",
                           "if-none-match", "x-hop", "WWW-Authenticate", "Content-Encoding"}) {
    EXPECT_TRUE(is_forbidden_trailer(name, head)) << name;
  }
  for (const char* name : {"X-A", "Server-Timing", "Digest", "ETag-ish", "i"}) {
    EXPECT_FALSE(is_forbidden_trailer(name, head)) << name;
  }
}

TEST(chunked_start, first_size_line_decides) {
  struct row {
    std::string in;
    parse_status st;
  };
  for (const auto& r : std::vector<row>{
           {"", parse_status::incomplete},
           {"1", parse_status::incomplete},
           {"1a;ext=1\r", parse_status::incomplete},
           {"1a;ext=1\r\n", parse_status::complete},
           {"0\r\n", parse_status::complete},
           {"5\r\nab", parse_status::complete},
           {"zz\r\n", parse_status::error},
           {"-1\r\n", parse_status::error},
           {"1 \r\n", parse_status::error},
           {"11111111111111111\r\n", parse_status::error},
           {"1\rx", parse_status::error},
       }) {
    SCOPED_TRACE(r.in);
    const auto c = check_chunked_start(r.in);
    EXPECT_EQ(c.status, r.st) << c.error;
    EXPECT_EQ(c.error.empty(), r.st != parse_status::error);
  }
}

TEST(http_authority, authority_of_absolute_targets) {
  EXPECT_EQ(authority_of("http://Example.com:81/x?y"), "Example.com:81");
  EXPECT_EQ(authority_of("http://a?q"), "a");
  EXPECT_EQ(authority_of("http://[::1]:8/"), "[::1]:8");
  EXPECT_EQ(authority_of("http://a"), "a");
  EXPECT_EQ(authority_of("/x"), "");
}

// ---- headers helpers ----

TEST(http_helpers, iequals_and_tokens) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("Content-Length", "content-lengt"));
  EXPECT_TRUE(header_has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(header_has_token("close", "Close"));
  EXPECT_TRUE(header_has_token(" a ,\tb\t", "b"));
  EXPECT_FALSE(header_has_token("keep-alive-x", "keep-alive"));
  EXPECT_FALSE(header_has_token("", "close"));
}

TEST(http_helpers, hop_by_hop) {
  const std::vector<header> headers = {{"Connection", "keep-alive, X-Custom, Content-Length"}, {"Host", "a"}};
  for (const char* name :
       {"Connection", "keep-alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Upgrade", "x-custom"}) {
    EXPECT_TRUE(is_hop_by_hop(name, headers)) << name;
  }
  for (const char* name : {"Host", "Content-Length", "Transfer-Encoding", "Accept", "Trailer"}) {
    EXPECT_FALSE(is_hop_by_hop(name, headers)) << name;
  }
}

// ---- authorities and targets ----

TEST(http_authority, parse) {
  struct row {
    std::string in;
    std::uint16_t default_port;
    std::optional<std::pair<std::string, std::uint16_t>> want;
  };
  const std::vector<row> rows = {
      {"example.com:443", 0, {{"example.com", 443}}},
      {"Example.COM:80", 0, {{"Example.COM", 80}}},
      {"example.com", 80, {{"example.com", 80}}},
      {"[::1]:8080", 0, {{"::1", 8080}}},
      {"[2001:db8::1]", 443, {{"2001:db8::1", 443}}},
      {"1.2.3.4:65535", 0, {{"1.2.3.4", 65535}}},
      {"example.com", 0, std::nullopt},
      {"example.com:", 80, std::nullopt},
      {"example.com:0", 0, std::nullopt},
      {"example.com:65536", 0, std::nullopt},
      {"example.com:+80", 0, std::nullopt},
      {"example.com:80x", 0, std::nullopt},
      {":80", 0, std::nullopt},
      {"::1:80", 0, std::nullopt},
      {"[::1", 0, std::nullopt},
      {"[::g]:80", 0, std::nullopt},
      {"[::1]x", 0, std::nullopt},
      {"a b:80", 0, std::nullopt},
      {"user@host:80", 0, std::nullopt},
      {"", 80, std::nullopt},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.in);
    const auto a = parse_authority(r.in, r.default_port);
    if (r.want) {
      ASSERT_TRUE(a.has_value());
      EXPECT_EQ(a->host, r.want->first);
      EXPECT_EQ(a->port, r.want->second);
    } else {
      EXPECT_FALSE(a.has_value());
    }
  }
}

TEST(http_authority, absolute_targets) {
  struct row {
    std::string in;
    bool ok;
    std::string scheme, host;
    std::uint16_t port;
    std::string origin;
  };
  const std::vector<row> rows = {
      {"http://example.com", true, "http", "example.com", 80, "/"},
      {"http://example.com/", true, "http", "example.com", 80, "/"},
      {"HTTP://example.com:8080/a/b?c=d", true, "http", "example.com", 8080, "/a/b?c=d"},
      {"http://example.com?q", true, "http", "example.com", 80, "/?q"},
      {"http://[::1]:81/x", true, "http", "::1", 81, "/x"},
      {"https://example.com/", true, "https", "example.com", 443, "/"},
      {"http://user@example.com/", false, "", "", 0, ""},
      {"http://u:p@example.com/", false, "", "", 0, ""},
      {"http://example.com/#frag", false, "", "", 0, ""},
      {"http:/example.com/", false, "", "", 0, ""},
      {"/relative", false, "", "", 0, ""},
      {"example.com:80", false, "", "", 0, ""},
      {"http://", false, "", "", 0, ""},
      {"http://:80/", false, "", "", 0, ""},
      {"ftp://example.com/", false, "", "", 0, ""},
      {"1http://a/", false, "", "", 0, ""},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.in);
    const auto t = parse_absolute_target(r.in);
    ASSERT_EQ(t.has_value(), r.ok);
    if (t) {
      EXPECT_EQ(t->scheme, r.scheme);
      EXPECT_EQ(t->where.host, r.host);
      EXPECT_EQ(t->where.port, r.port);
      EXPECT_EQ(t->origin_form, r.origin);
    }
  }
}

TEST(http_authority, format) {
  EXPECT_EQ(format_authority("example.com", 80), "example.com:80");
  EXPECT_EQ(format_authority("::1", 443), "[::1]:443");
  EXPECT_EQ(format_authority("1.2.3.4", 1), "1.2.3.4:1");
}

}  // namespace
}  // namespace exitpool::proto
