#include "proto/text.hpp"

#include <gtest/gtest.h>

namespace exitpool::proto {
namespace {

TEST(Printable, ControlCharactersBecomeSpaces) {
  EXPECT_EQ(printable(std::string("a\r\nb\tc\x7f") + "d"), "a  b c d");
  EXPECT_EQ(printable(""), "");
}

TEST(Quoted, EscapesQuotesAndBackslashesAfterPrintable) {
  EXPECT_EQ(quoted("plain"), "\"plain\"");
  EXPECT_EQ(quoted("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
  EXPECT_EQ(quoted("a\r\nb"), "\"a  b\"");
}

TEST(Clip, EscapesControlBytesAndCuts) {
  EXPECT_EQ(clip("alice"), "alice");
  EXPECT_EQ(clip(std::string("a\r\nb\x00\x7f\\", 7)), "a\\x0d\\x0ab\\x00\\x7f\\");
  EXPECT_EQ(clip(std::string(200, 'x'), 10), std::string(10, 'x') + "...");
  EXPECT_EQ(clip("\n\n\n", 2), "\\x0a\\x0a...");
  EXPECT_EQ(clip("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 kept
  EXPECT_FALSE(has_control(clip(std::string(1000, '\n'))));
  EXPECT_TRUE(has_control("a\tb"));
  EXPECT_FALSE(has_control("a b"));
}

TEST(ConstantTimeEqual, ComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secret2"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

}  // namespace
}  // namespace exitpool::proto
