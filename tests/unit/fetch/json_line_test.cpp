#include "fetch/json_line.hpp"

#include <gtest/gtest.h>

#include <string>

namespace exitpool::fetch {

namespace {
std::string jq(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}
}  // namespace

TEST(json_line, escapes) {
  struct tc {
    std::string in, out;
  };
  for (const auto& c : std::vector<tc>{
           {"plain", "\"plain\""},
           {"q\"b\\", "\"q\\\"b\\\\\""},
           {"a\nb\tc\r", "\"a\\nb\\tc\\r\""},
           {std::string("\x01\x1f", 2), "\"\\u0001\\u001f\""},
           {"caf\xc3\xa9", "\"caf\xc3\xa9\""},             // valid UTF-8 passes through
           {"bad\xff", "\"bad\\u00ff\""},                  // invalid byte: \u00XX
           {"\xc0\xaf", "\"\\u00c0\\u00af\""},             // overlong
           {"\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\""},  // surrogate
       }) {
    EXPECT_EQ(jq(c.in), c.out) << c.in;
  }
}

TEST(json_line, url_round_trip_is_byte_exact) {
  for (std::string url : {std::string("http://a/b?c=\"d\"&e=\\"), std::string("http://h/\xff\xfe\x01"),
                          std::string("http://h/caf\xc3\xa9\t")}) {
    std::string line = "{\"url\":" + jq(url) + ",\"x\":1}";
    auto back = read_url_field(line);
    ASSERT_TRUE(back.has_value()) << line;
    EXPECT_EQ(*back, url);
  }
}

TEST(json_line, complete_object) {
  EXPECT_TRUE(complete_object(R"({"url":"a","h":{"x":"}"},"t":[1,2]})"));
  EXPECT_FALSE(complete_object(R"({"url":"a","h":{"x":"}"})"));  // torn after an inner }
  EXPECT_FALSE(complete_object(R"({"url":"a)"));
  EXPECT_FALSE(complete_object(R"({"url":"a"}})"));
  EXPECT_FALSE(complete_object(R"({"url":"a"} )"));
  EXPECT_FALSE(complete_object(std::string("{\"url\":\"a\0\"}", 12)));
  EXPECT_FALSE(complete_object(""));
  EXPECT_FALSE(read_url_field(R"({"status":1,"url":"a"})").has_value());
}

TEST(json_line, valid_utf8) {
  EXPECT_TRUE(valid_utf8("hello \xe2\x82\xac"));
  EXPECT_FALSE(valid_utf8("\x80"));
  EXPECT_FALSE(valid_utf8("\xe2\x82"));
}

}  // namespace exitpool::fetch
