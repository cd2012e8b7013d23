#include "proto/base64.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace exitpool::proto {
namespace {

TEST(base64, rfc4648_vectors) {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
      {"Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="},
      {std::string("\xff\xfe\x00\x01", 4), "//4AAQ=="},
  };
  for (const auto& [plain, encoded] : rows) {
    EXPECT_EQ(base64_encode(plain), encoded);
    const auto d = base64_decode(encoded);
    ASSERT_TRUE(d.has_value()) << encoded;
    EXPECT_EQ(*d, plain);
  }
}

TEST(base64, round_trips_all_byte_values) {
  std::string all;
  for (int i = 0; i < 256; ++i) {
    all.push_back(static_cast<char>(i));
  }
  for (std::size_t n = 0; n <= all.size(); n += 7) {
    const std::string in = all.substr(0, n);
    const auto out = base64_decode(base64_encode(in));
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, in);
  }
}

TEST(base64, rejects_malformed) {
  for (const char* bad : {"Zg", "Zg=", "Zm9", "Z===", "====", "Zg==Zg==", "Zm=v", "Zm9v\n", " Zm9v", "Zm9v=", "Zm-v",
                          "Zm_v", "Zh==", "Zm9=", "Zm\x80v", "QWxhZGRpbjpvcGVuIHNlc2FtZQ"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace exitpool::proto
