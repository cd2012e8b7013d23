#include "cli/check.hpp"

#include <gtest/gtest.h>

namespace exitpool::cli {
namespace {

TEST(FirstLineIp, TableOfBodies) {
  struct tc {
    std::string body;
    std::string want;
  } cases[] = {
      {"127.0.0.11\n", "127.0.0.11"},
      {"127.0.0.11", "127.0.0.11"},
      {"  10.1.2.3 \r\nmore\n", "10.1.2.3"},
      {"::1\n", "::1"},
      {"2001:DB8::1\n", "2001:db8::1"},
      {"", ""},
      {"\n127.0.0.1\n", ""},
      {"<html>hello</html>", ""},
      {"999.1.1.1\n", ""},
      {"127.0.0.1 extra\n", ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(first_line_ip(c.body), c.want) << c.body;
  }
}

TEST(DecodeChunked, WholeTruncatedAndExtensions) {
  EXPECT_EQ(decode_chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "hello world");
  EXPECT_EQ(decode_chunked("b;ext=1\r\n127.0.0.13\n\r\n0\r\n\r\n"), "127.0.0.13\n");
  EXPECT_EQ(decode_chunked("5\nhello\n0\n\n"), "hello");
  EXPECT_EQ(decode_chunked("a\r\n0123"), "0123");
  EXPECT_EQ(decode_chunked("zz\r\nhello"), "");
  EXPECT_EQ(decode_chunked(""), "");
}

}  // namespace
}  // namespace exitpool::cli
