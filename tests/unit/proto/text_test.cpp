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

TEST(ConstantTimeEqual, ComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secret2"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

}  // namespace
}  // namespace exitpool::proto
