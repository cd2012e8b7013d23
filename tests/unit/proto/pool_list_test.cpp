#include "proto/pool_list.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace exitpool::proto {
namespace {

std::string error_of(std::string_view text, const list_defaults& d = {}, bool allow_empty = false) {
  try {
    (void)parse_pool_list(text, "SRC", d, allow_empty);
  } catch (const pool_error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string tag(const exit_spec& e, std::string_view key) {
  for (const auto& [k, v] : e.tags) {
    if (k == key) {
      return v;
    }
  }
  return "(none)";
}

TEST(pool_list, detects_the_format_from_the_first_byte) {
  EXPECT_EQ(detect_list_format("  \n[\"1.2.3.4:80\"]"), list_format::json);
  EXPECT_EQ(detect_list_format("{\"data\": []}"), list_format::json);
  EXPECT_EQ(detect_list_format("1.2.3.4:80\n"), list_format::lines);
  EXPECT_EQ(detect_list_format("# [comment]\n1.2.3.4:80"), list_format::lines);
  EXPECT_EQ(detect_list_format(""), list_format::lines);
  EXPECT_EQ(detect_list_format("[ ]"), list_format::json);
  EXPECT_EQ(detect_list_format("[\n {\"ip\": \"10.0.0.1\"}]"), list_format::json);
  EXPECT_EQ(detect_list_format("[::1]:3128:u:p\n"), list_format::lines);
  EXPECT_EQ(detect_list_format("[2001:db8::1]:3128\n"), list_format::lines);
}

TEST(pool_list, reads_pool_lines_and_vendor_lines_with_crlf) {
  const auto exits = parse_pool_list(
      "http://u:p@10.0.0.1:3128 country=de\r\n10.0.0.2:8000:alice:s3cret\r\n10.0.0.3:8001\r\n", "SRC", {});
  ASSERT_EQ(exits.size(), 3U);
  EXPECT_EQ(exits[0].id, "u@10.0.0.1:3128");
  EXPECT_EQ(exits[0].country, "de");
  EXPECT_EQ(exits[1].scheme, exit_scheme::http);
  EXPECT_EQ(exits[1].user, "alice");
  EXPECT_EQ(exits[1].pass, "s3cret");
  EXPECT_EQ(exits[2].id, "10.0.0.3:8001");
  EXPECT_EQ(exits[2].line, 3U);
}

TEST(pool_list, applies_the_source_defaults_where_a_line_has_none) {
  list_defaults d;
  d.tags = "type=isp country=us tier=1 weight=3 pool=abc";
  d.scheme = exit_scheme::socks5;
  d.user = "acct";
  d.pass = "pw";
  const auto exits = parse_pool_list(
      "10.0.0.1:1080\n"
      "10.0.0.2:1080:own:secret country=DE weight=5 tier=2\n"
      "http://10.0.0.3:3128 id=third type=residential\n",
      "SRC", d);
  ASSERT_EQ(exits.size(), 3U);
  // Bare line: the scheme, the credentials, every tag.
  EXPECT_EQ(exits[0].scheme, exit_scheme::socks5);
  EXPECT_EQ(exits[0].user, "acct");
  EXPECT_EQ(exits[0].pass, "pw");
  EXPECT_EQ(exits[0].id, "acct@10.0.0.1:1080");  // a derived id follows the credentials
  EXPECT_EQ(exits[0].country, "us");
  EXPECT_EQ(exits[0].type, "isp");
  EXPECT_EQ(exits[0].weight, 3.0);
  EXPECT_EQ(tag(exits[0], "tier"), "1");
  EXPECT_EQ(tag(exits[0], "pool"), "abc");
  // The line's own values win.
  EXPECT_EQ(exits[1].user, "own");
  EXPECT_EQ(exits[1].pass, "secret");
  EXPECT_EQ(exits[1].country, "de");
  EXPECT_EQ(exits[1].weight, 5.0);
  EXPECT_EQ(tag(exits[1], "tier"), "2");
  EXPECT_EQ(exits[1].type, "isp");
  // A line with a scheme keeps it; an explicit id stays.
  EXPECT_EQ(exits[2].scheme, exit_scheme::http);
  EXPECT_EQ(exits[2].id, "third");
  EXPECT_EQ(exits[2].user, "acct");
  EXPECT_EQ(exits[2].type, "residential");
}

TEST(pool_list, reads_json_strings_and_objects) {
  const auto exits = parse_pool_list(R"({"code": 0, "data": [
      "10.0.0.1:8000:u1:p1",
      {"ip": "10.0.0.2", "port": 8001, "username": "u2", "password": "p@ss:w", "country": "US", "city": "NYC",
       "type": "isp", "expires": "2027-01-01"},
      {"host": "10.0.0.3", "port": "1080", "protocol": "socks5"},
      {"server": "2001:db8::1", "port": 3128, "type": "SOCKS"}
    ]})",
                                     "SRC", {});
  ASSERT_EQ(exits.size(), 4U);
  EXPECT_EQ(exits[0].id, "u1@10.0.0.1:8000");
  EXPECT_EQ(exits[0].line, 1U);
  EXPECT_EQ(exits[1].id, "u2@10.0.0.2:8001");
  EXPECT_EQ(exits[1].pass, "p@ss:w");
  EXPECT_EQ(exits[1].country, "us");
  EXPECT_EQ(exits[1].city, "nyc");
  EXPECT_EQ(exits[1].type, "isp");
  EXPECT_EQ(exits[1].line, 2U);
  EXPECT_EQ(exits[2].scheme, exit_scheme::socks5);
  EXPECT_EQ(exits[2].port, 1080);
  EXPECT_EQ(exits[3].scheme, exit_scheme::socks5);  // "type": "socks" names the protocol
  EXPECT_EQ(exits[3].host, "2001:db8::1");
  EXPECT_EQ(exits[3].type, "");
}

TEST(pool_list, json_objects_without_a_protocol_take_the_default_scheme) {
  list_defaults d;
  d.scheme = exit_scheme::https;
  d.tags = "type=datacenter";
  const auto exits = parse_pool_list(R"([{"ip": "10.0.0.1", "port": 443}, {"ip": "10.0.0.2", "port": 1080,
                                         "protocol": "socks5h"}])",
                                     "SRC", d);
  ASSERT_EQ(exits.size(), 2U);
  EXPECT_EQ(exits[0].scheme, exit_scheme::https);
  EXPECT_EQ(exits[1].scheme, exit_scheme::socks5h);
  EXPECT_EQ(exits[1].type, "datacenter");
}

TEST(pool_list, names_the_source_and_the_place_of_each_error) {
  struct bad_case {
    std::string text;
    std::string error;
  };
  const std::vector<bad_case> cases = {
      {"10.0.0.1:80\n<html>oops</html>\n", "SRC:2: "},
      {"[\"10.0.0.1:80\",\n  {\"ip\": \"10.0.0.2\", \"port\": }]", "SRC:2:30: invalid JSON"},
      {"[\"10.0.0.1:80\", 42]", "SRC: item 2: expected a string (a pool line) or an object"},
      {"[{\"ip\": \"10.0.0.1\"}]", "SRC: item 1: no port"},
      {"[{\"port\": 80}]", "SRC: item 1: no host (host, ip, server or address)"},
      {"[{\"ip\": \"10.0.0.1\", \"port\": 70000}]", "SRC: item 1: port 70000 out of range"},
      {"[{\"ip\": \"10.0.0.1\", \"port\": 80, \"protocol\": \"ftp\"}]", "SRC: item 1: unknown protocol 'ftp'"},
      {"[{\"ip\": 10, \"port\": 80}]", "SRC: item 1: field 'ip' must be a string"},
      {"[\"10.0.0.1:80\", {\"ip\": \"10.0.0.1\", \"port\": 80}]",
       "SRC: item 2: duplicate id '10.0.0.1:80' (first in item 1)"},
      {"{\"error\": \"bad key\"}", "SRC: JSON without a list of exits"},
      {"[]", "SRC: empty list"},
      {"{\"data\": []}", "SRC: empty list"},
      {"", "SRC: empty list (no exits: no text at all)"},
      {"# nothing today\n\n", "SRC: empty list (no exits: only comments)"},
  };
  for (const auto& c : cases) {
    const auto err = error_of(c.text);
    EXPECT_EQ(err.substr(0, c.error.size()), c.error) << c.text;
  }
}

TEST(pool_list, an_empty_list_is_fine_when_the_source_says_so) {
  EXPECT_TRUE(parse_pool_list("", "SRC", {}, true).empty());
  EXPECT_TRUE(parse_pool_list("# none\n", "SRC", {}, true).empty());
  EXPECT_TRUE(parse_pool_list("{\"data\": []}", "SRC", {}, true).empty());
}

TEST(pool_list, checks_the_defaults) {
  EXPECT_EQ(check_list_defaults({}), "");
  EXPECT_EQ(check_list_defaults({"country=us type=isp tier=2", exit_scheme::socks5, "u", "p"}), "");
  EXPECT_NE(check_list_defaults({"country=us weight=-1", {}, "", ""}), "");
  EXPECT_NE(check_list_defaults({"id=x", {}, "", ""}).find("id= names one exit"), std::string::npos);
  EXPECT_NE(check_list_defaults({"not-a-tag", {}, "", ""}), "");
  EXPECT_NE(check_list_defaults({"", exit_scheme::direct, "", ""}), "");
}

}  // namespace
}  // namespace exitpool::proto
