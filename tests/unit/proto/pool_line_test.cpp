#include "proto/pool_line.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace exitpool::proto {
namespace {

struct valid_case {
  std::string line;
  exit_scheme scheme;
  std::string host;
  std::uint16_t port;
  std::string user;
  std::string pass;
  std::string id;
};

TEST(pool_line, parses_exit_urls) {
  const std::vector<valid_case> cases = {
      {"http://1.2.3.4:3128", exit_scheme::http, "1.2.3.4", 3128, "", "", "1.2.3.4:3128"},
      {"HTTP://proxy.example:8080/", exit_scheme::http, "proxy.example", 8080, "", "", "proxy.example:8080"},
      {"https://u:p@proxy.example:443", exit_scheme::https, "proxy.example", 443, "u", "p", "u@proxy.example:443"},
      {"socks5://10.0.0.1:1080", exit_scheme::socks5, "10.0.0.1", 1080, "", "", "10.0.0.1:1080"},
      {"socks5h://user@10.0.0.1:1080", exit_scheme::socks5h, "10.0.0.1", 1080, "user", "", "user@10.0.0.1:1080"},
      {"http://a%40b:p%3Aw%25@h:1", exit_scheme::http, "h", 1, "a@b", "p:w%", "a@b@h:1"},
      {"http://u:p@ss@h:1", exit_scheme::http, "h", 1, "u", "p@ss", "u@h:1"},
      {"http://[::1]:8080", exit_scheme::http, "::1", 8080, "", "", "[::1]:8080"},
      {"socks5://u:p@[2001:db8::1]:1080", exit_scheme::socks5, "2001:db8::1", 1080, "u", "p", "u@[2001:db8::1]:1080"},
      {"direct://", exit_scheme::direct, "", 0, "", "", "direct"},
      {"direct://127.0.0.5", exit_scheme::direct, "127.0.0.5", 0, "", "", "direct:127.0.0.5"},
      {"direct://[::1]", exit_scheme::direct, "::1", 0, "", "", "direct:::1"},
      {"direct://::1", exit_scheme::direct, "::1", 0, "", "", "direct:::1"},
      {"1.2.3.4:8080", exit_scheme::http, "1.2.3.4", 8080, "", "", "1.2.3.4:8080"},
      {"proxy.example:8080:alice:s3cret", exit_scheme::http, "proxy.example", 8080, "alice", "s3cret",
       "alice@proxy.example:8080"},
      {"h:1:u:pa:ss", exit_scheme::http, "h", 1, "u", "pa:ss", "u@h:1"},
      {"[::1]:3128:u:p", exit_scheme::http, "::1", 3128, "u", "p", "u@[::1]:3128"},
      {"  http://h:1   # trailing comment", exit_scheme::http, "h", 1, "", "", "h:1"},
      {"http://h:1\r", exit_scheme::http, "h", 1, "", "", "h:1"},
      {"http://u:pa#ss@h:1", exit_scheme::http, "h", 1, "u", "pa#ss", "u@h:1"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    const auto r = parse_pool_line(c.line);
    ASSERT_TRUE(r.error.empty()) << r.error;
    ASSERT_TRUE(r.spec.has_value());
    EXPECT_EQ(r.spec->scheme, c.scheme);
    EXPECT_EQ(r.spec->host, c.host);
    EXPECT_EQ(r.spec->port, c.port);
    EXPECT_EQ(r.spec->user, c.user);
    EXPECT_EQ(r.spec->pass, c.pass);
    EXPECT_EQ(r.spec->id, c.id);
    EXPECT_EQ(r.spec->weight, 1.0);
    EXPECT_TRUE(r.spec->tls_verify);
  }
}

TEST(pool_line, parses_keys) {
  const auto r = parse_pool_line(
      "https://h:443 id=de-1 Country=DE city=Berlin TYPE=Residential weight=2.5 tls_verify=false asn=3320 "
      "Vendor=Acme");
  ASSERT_TRUE(r.spec.has_value()) << r.error;
  const auto& s = *r.spec;
  EXPECT_EQ(s.id, "de-1");
  EXPECT_EQ(s.country, "de");
  EXPECT_EQ(s.city, "berlin");
  EXPECT_EQ(s.type, "residential");
  EXPECT_DOUBLE_EQ(s.weight, 2.5);
  EXPECT_FALSE(s.tls_verify);
  ASSERT_EQ(s.tags.size(), 2u);
  EXPECT_EQ(s.tags[0], (std::pair<std::string, std::string>{"asn", "3320"}));
  EXPECT_EQ(s.tags[1], (std::pair<std::string, std::string>{"vendor", "Acme"}));

  const auto insecure = parse_pool_line("https://h:443 insecure");
  ASSERT_TRUE(insecure.spec.has_value()) << insecure.error;
  EXPECT_FALSE(insecure.spec->tls_verify);
  const auto verify = parse_pool_line("https://h:443 tls_verify=TRUE");
  ASSERT_TRUE(verify.spec.has_value()) << verify.error;
  EXPECT_TRUE(verify.spec->tls_verify);
  const auto direct = parse_pool_line("direct://127.0.0.5 country=us weight=3");
  ASSERT_TRUE(direct.spec.has_value()) << direct.error;
  EXPECT_EQ(direct.spec->country, "us");
}

TEST(pool_line, blank_and_comment_lines) {
  for (const char* line : {"", "   ", "\t", "# comment", "   # indented comment", "\r"}) {
    const auto r = parse_pool_line(line);
    EXPECT_FALSE(r.spec.has_value()) << line;
    EXPECT_TRUE(r.error.empty()) << line;
  }
}

struct bad_case {
  std::string line;
  std::string error;  // exact message
};

TEST(pool_line, rejects_bad_lines_precisely) {
  const std::vector<bad_case> cases = {
      {"ftp://h:21", "unknown scheme 'ftp'"},
      {"socks4://h:1080", "unknown scheme 'socks4'"},
      {"://h:1", "missing scheme in '://h:1'"},
      {"http://h", "missing port in 'http://h'"},
      {"http://h:", "missing port in 'http://h:'"},
      {"http://[::1]", "missing port in 'http://[::1]'"},
      {"http://u:secret@h", "missing port in 'http://u:***@h'"},
      {"http://h:70000", "port 70000 out of range"},
      {"http://h:0", "port 0 out of range"},
      {"http://h:99999999999", "port 99999999999 out of range"},
      {"http://h:80a", "bad port '80a' in 'http://h:80a'"},
      {"http://:80", "missing host in 'http://:80'"},
      {"http://::1:80", "IPv6 addresses need brackets: 'http://::1:80'"},
      {"http://[::g]:80", "bad IPv6 address '::g'"},
      {"http://[::1:80", "unterminated '[' in 'http://[::1:80'"},
      {"http://h_x!:80", "bad host 'h_x!'"},
      {"http://h:80/path", "unexpected path '/path' in 'http://h:80/path'"},
      {"http://h:80?x", "unexpected query or fragment in 'http://h:80?x'"},
      {"http://:p@h:1", "empty user in 'http://:***@h:1'"},
      {"http://u%zz:p@h:1", "bad percent-encoding in user of 'http://u%zz:***@h:1'"},
      {"http://u:p%2@h:1", "bad percent-encoding in password of 'http://u:***@h:1'"},
      {"direct://127.0.0.5:80", "direct exits take no port or credentials: 'direct://127.0.0.5:80'"},
      {"direct://u:p@127.0.0.5", "direct exits take no port or credentials: 'direct://***@127.0.0.5'"},
      {"direct://[::1]:80", "direct exits take no port or credentials: 'direct://[::1]:80'"},
      {"direct://eth0", "direct source must be an IP address, not 'eth0'"},
      {"direct://[::zz]", "bad IPv6 address '::zz'"},
      {"direct://[2001:db8::]/47", "bad prefix length '47' in '2001:db8::/47' (want 48 to 128)"},
      {"direct://[2001:db8::]/129", "bad prefix length '129' in '2001:db8::/129' (want 48 to 128)"},
      {"direct://[2001:db8::]/", "bad prefix length '' in '2001:db8::/' (want 48 to 128)"},
      {"direct://[2001:db8::]/6x", "bad prefix length '6x' in '2001:db8::/6x' (want 48 to 128)"},
      {"direct://[2001:db8::1]/64", "'2001:db8::1/64' has host bits set: the prefix is 2001:db8::/64"},
      {"direct://[2001:db8::]/64:80", "bad prefix length '64:80' in '2001:db8::/64:80' (want 48 to 128)"},
      {"direct://10.0.0.0/24", "only IPv6 prefixes can be direct exits, not '10.0.0.0/24'"},
      {"direct://eth0/64", "unexpected path in 'direct://eth0/64'"},
      {"h", "missing port in 'h' (expected host:port or scheme://host:port)"},
      {"h:80:user", "expected host:port:user:pass, got 'h:80:...'"},
      {"h:80::pass", "empty user in host:port:user:pass"},
      {"h:abc:u:p", "bad port 'abc' in 'h:abc'"},
      {"h:65536", "port 65536 out of range"},
      {"[::1]x:80", "unexpected 'x' after ']' in '[::1]'"},
      {"[::1:80", "unterminated '[' in host:port:user:pass entry"},
      {":80:u:p", "missing host in ':80:u'"},
      {"://u:p@h:1", "missing scheme in '://u:***@h:1'"},
      {"http://h:1 weight=x", "bad weight 'x' (want a number > 0)"},
      {"http://h:1 weight=0", "bad weight '0' (want a number > 0)"},
      {"http://h:1 weight=-1", "bad weight '-1' (want a number > 0)"},
      {"http://h:1 weight=inf", "bad weight 'inf' (want a number > 0)"},
      {"http://h:1 weight=nan", "bad weight 'nan' (want a number > 0)"},
      {"http://h:1 weight=1x", "bad weight '1x' (want a number > 0)"},
      {"http://h:1 country", "expected key=value, got 'country'"},
      {"http://h:1 country=", "empty value for 'country'"},
      {"http://h:1 =us", "missing key in '=us'"},
      {"http://h:1 country=us COUNTRY=de", "duplicate key 'country'"},
      {"https://h:1 tls_verify=maybe", "bad tls_verify 'maybe' (want true or false)"},
      {"http://h:1 insecure", "tls_verify/insecure applies only to https exits, not http"},
      {"https://h:1 insecure tls_verify=true", "duplicate key 'tls_verify'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    const auto r = parse_pool_line(c.line);
    EXPECT_FALSE(r.spec.has_value());
    EXPECT_EQ(r.error, c.error);
  }
}

TEST(pool_line, errors_never_show_passwords) {
  for (const char* line : {"http://u:hunter2@h", "http://u:hunter2@h:99999", "http://u:hunter2@h:1/x",
                           "http://u:hunter2@::1:80", "http://:hunter2@h:1", "direct://u:hunter2@1.2.3.4",
                           // Found by tests/fuzz/fuzz_pool_line (tests/fuzz/regressions/fuzz_pool_line/):
                           // malformed vendor-format lines and a missing scheme quoted the whole text.
                           "[::1]x:80:user:hunter2", "[::1:80:user:hunter2", ":80:user:hunter2", "://u:hunter2@h:1"}) {
    const auto r = parse_pool_line(line);
    ASSERT_FALSE(r.error.empty()) << line;
    EXPECT_EQ(r.error.find("hunter2"), std::string::npos) << r.error;
  }
}

TEST(pool_line, ids_and_redaction) {
  exit_spec s;
  s.scheme = exit_scheme::socks5;
  s.host = "2001:db8::1";
  s.port = 1080;
  EXPECT_EQ(default_exit_id(s), "[2001:db8::1]:1080");
  EXPECT_EQ(redacted_url(s), "socks5://[2001:db8::1]:1080");
  s.user = "bob";
  s.pass = "hunter2";
  EXPECT_EQ(default_exit_id(s), "bob@[2001:db8::1]:1080");
  EXPECT_EQ(redacted_url(s), "socks5://bob:***@[2001:db8::1]:1080");
  exit_spec d;
  EXPECT_EQ(default_exit_id(d), "direct");
  EXPECT_EQ(redacted_url(d), "direct://");
  d.host = "127.0.0.5";
  EXPECT_EQ(default_exit_id(d), "direct:127.0.0.5");
  EXPECT_EQ(redacted_url(d), "direct://127.0.0.5");
  d.host = "2001:db8:42::";
  d.prefix_len = 64;
  EXPECT_EQ(default_exit_id(d), "direct:2001:db8:42::/64");
  EXPECT_EQ(redacted_url(d), "direct://[2001:db8:42::]/64");
  for (auto sc :
       {exit_scheme::http, exit_scheme::https, exit_scheme::socks5, exit_scheme::socks5h, exit_scheme::direct}) {
    EXPECT_STRNE(scheme_name(sc), "unknown");
  }
}

TEST(pool_line, redacted_url_round_trips) {
  for (const char* line : {"http://h:1", "https://u:p@h:443", "socks5h://[::1]:1080", "direct://10.0.0.1",
                           "direct://[2001:db8:42::]/64"}) {
    const auto r = parse_pool_line(line);
    ASSERT_TRUE(r.spec.has_value()) << line;
    const auto again = parse_pool_line(redacted_url(*r.spec));
    ASSERT_TRUE(again.spec.has_value()) << redacted_url(*r.spec);
    EXPECT_EQ(again.spec->host, r.spec->host);
    EXPECT_EQ(again.spec->port, r.spec->port);
    EXPECT_EQ(again.spec->scheme, r.spec->scheme);
  }
}

TEST(pool_text, parses_a_file) {
  const std::string text =
      "# exits\n"
      "\n"
      "http://1.2.3.4:3128 country=us\n"
      "5.6.7.8:8080:u:p   # vendor line\r\n"
      "direct://\n"
      "direct://127.0.0.5 id=local5";
  const auto exits = parse_pool_text(text, "pool.txt");
  ASSERT_EQ(exits.size(), 4u);
  EXPECT_EQ(exits[0].line, 3u);
  EXPECT_EQ(exits[0].country, "us");
  EXPECT_EQ(exits[1].line, 4u);
  EXPECT_EQ(exits[1].pass, "p");
  EXPECT_EQ(exits[2].id, "direct");
  EXPECT_EQ(exits[3].id, "local5");
  EXPECT_EQ(exits[3].line, 6u);
}

TEST(pool_text, errors_name_file_and_line) {
  struct row {
    std::string text;
    std::string what;
  };
  const std::vector<row> rows = {
      {"http://h:1\n\nftp://h:2\n", "pool.txt:3: unknown scheme 'ftp'"},
      {"http://h:1\nhttp://h:1 country=de\n", "pool.txt:2: duplicate id 'h:1' (first on line 1)"},
      {"http://h:1 id=x\n# c\nsocks5://g:2 id=x\n", "pool.txt:3: duplicate id 'x' (first on line 1)"},
      {"", "pool.txt:1: no exits in pool file"},
      {"# only comments\n\n# here\n", "pool.txt:3: no exits in pool file"},
      // SOCKS5 credentials RFC 1929 cannot carry are refused at load, not at every dial.
      {"http://h:1\nsocks5://" + std::string(256, 'u') + ":p@g:2\n",
       "pool.txt:2: SOCKS5 credentials are at most 255 bytes each (user: 256 bytes, password: 1)"},
      {"socks5h://u:" + std::string(300, 'p') + "@g:2\n",
       "pool.txt:1: SOCKS5 credentials are at most 255 bytes each (user: 1 bytes, password: 300)"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.text);
    try {
      parse_pool_text(r.text, "pool.txt");
      ADD_FAILURE() << "no exception";
    } catch (const pool_error& e) {
      EXPECT_EQ(std::string(e.what()), r.what);
    }
  }
}

TEST(pool_text, socks5_credentials_that_fit) {
  // 255 bytes each, and an empty password (PLEN 0) are sendable; an http line has no such limit.
  const auto exits = parse_pool_text("socks5://" + std::string(255, 'u') + ":" + std::string(255, 'p') +
                                         "@g:1\nsocks5h://alice@g:2\nhttp://" + std::string(300, 'u') + ":p@h:3\n",
                                     "pool.txt");
  ASSERT_EQ(exits.size(), 3u);
  EXPECT_EQ(exits[1].user, "alice");
  EXPECT_EQ(exits[1].pass, "");
}

// A text split over several threads parses exactly as it does in one piece: the same
// exits and line numbers, and the same first error (a duplicate id before a bad line wins).
TEST(pool_text, split_over_threads_matches_one_piece) {
  std::string text = "# header\n\n";
  for (int i = 0; i < 200; ++i) {
    text += "http://u" + std::to_string(i) + ":p@10.0." + std::to_string(i / 100) + "." + std::to_string(i % 100) +
            ":3128 country=US type=ISP\n";
    if (i % 37 == 0) {
      text += "   # comment\r\n";
    }
  }
  text += "direct://127.0.0.5";  // no final newline
  const parse_options one{1, 1 << 30};
  const auto whole = parse_pool_text(text, "pool.txt", one);
  ASSERT_EQ(whole.size(), 201u);
  EXPECT_EQ(whole[0].country, "us");
  for (unsigned threads : {2u, 3u, 7u}) {
    SCOPED_TRACE(threads);
    const auto split = parse_pool_text(text, "pool.txt", parse_options{threads, 1});
    ASSERT_EQ(split.size(), whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) {
      EXPECT_EQ(split[i].id, whole[i].id);
      EXPECT_EQ(split[i].line, whole[i].line);
      EXPECT_EQ(split[i].country, whole[i].country);
    }
  }

  auto error_of = [](const std::string& t, const parse_options& o) {
    try {
      parse_pool_text(t, "pool.txt", o);
    } catch (const pool_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string lines;
  for (int i = 1; i <= 60; ++i) {
    lines += "http://h" + std::to_string(i) + ":1\n";
  }
  const std::vector<std::pair<std::string, std::string>> broken = {
      {lines + "ftp://x:1\n" + lines, "pool.txt:61: unknown scheme 'ftp'"},
      {lines + "http://h3:1\n" + lines, "pool.txt:61: duplicate id 'h3:1' (first on line 3)"},
      {"http://h1:1\nhttp://h1:1\n" + lines + "ftp://x:1\n", "pool.txt:2: duplicate id 'h1:1' (first on line 1)"},
      {"ftp://x:1\n" + lines + lines, "pool.txt:1: unknown scheme 'ftp'"},
      {"# a\n" + lines + "http://u:hunter2@h:99999\n", "pool.txt:62: port 99999 out of range"},
      {std::string(500, '\n') + "# only\n", "pool.txt:501: no exits in pool file"},
  };
  for (const auto& [t, what] : broken) {
    EXPECT_EQ(error_of(t, one), what);
    for (unsigned threads : {2u, 3u, 5u}) {
      EXPECT_EQ(error_of(t, parse_options{threads, 1}), what) << threads;
    }
  }
}

TEST(pool_line, ipv6_prefix_exits) {
  struct row {
    const char* line;
    const char* host;
    int prefix_len;
    const char* id;
  };
  for (const row& r : {
           row{"direct://[2001:db8:42::]/64", "2001:db8:42::", 64, "direct:2001:db8:42::/64"},
           row{"direct://2001:db8:42::/64", "2001:db8:42::", 64, "direct:2001:db8:42::/64"},
           row{"direct://[2001:0DB8:0042:0000::]/48", "2001:db8:42::", 48, "direct:2001:db8:42::/48"},
           row{"direct://[2001:db8::5]/128", "2001:db8::5", 128, "direct:2001:db8::5/128"},
           row{"direct://[2001:db8::]/64 id=v6 country=de", "2001:db8::", 64, "v6"},
           row{"direct://[2001:db8::1]", "2001:db8::1", 0, "direct:2001:db8::1"},
       }) {
    const auto p = parse_pool_line(r.line);
    ASSERT_TRUE(p.spec.has_value()) << r.line << ": " << p.error;
    EXPECT_EQ(p.spec->scheme, exit_scheme::direct) << r.line;
    EXPECT_EQ(p.spec->host, r.host) << r.line;
    EXPECT_EQ(p.spec->prefix_len, r.prefix_len) << r.line;
    EXPECT_EQ(p.spec->id, r.id) << r.line;
  }
}

}  // namespace
}  // namespace exitpool::proto
