#include "fetch/url_set.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace exitpool::fetch {

TEST(fingerprint, stable_and_distinct) {
  EXPECT_EQ(fingerprint("http://a/"), fingerprint("http://a/"));
  EXPECT_NE(fingerprint("http://a/"), fingerprint("http://a/ "));
  EXPECT_NE(fingerprint(""), fingerprint(std::string_view("\0", 1)));
}

TEST(url_set, insert_contains_and_grow) {
  url_set s(4);
  std::set<std::uint64_t> ref;
  for (int i = 0; i < 100000; ++i) {
    const auto fp = fingerprint("http://host/" + std::to_string(i % 70000));
    EXPECT_EQ(s.insert(fp), ref.insert(fp).second) << i;
  }
  EXPECT_EQ(s.size(), ref.size());
  for (auto fp : ref) {
    EXPECT_TRUE(s.contains(fp));
  }
  EXPECT_FALSE(s.contains(fingerprint("http://host/none")));
  EXPECT_LE(s.memory_bytes(), 70000u * 8 * 3);  // compact: a few words per URL
}

TEST(url_set, zero_key_is_a_key) {
  url_set s;
  EXPECT_TRUE(s.insert(0));
  EXPECT_FALSE(s.insert(0));
  EXPECT_TRUE(s.contains(0));
}

}  // namespace exitpool::fetch
