#include "fetch/input.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace exitpool::fetch {

namespace {
std::string temp_path(const char* suffix) {
  return ::testing::TempDir() + "fetch_input_" + std::to_string(::getpid()) + suffix;
}
std::vector<std::string> read_all(const std::string& path) {
  line_reader r(path);
  std::vector<std::string> out;
  while (auto l = r.next()) {
    out.emplace_back(*l);
  }
  return out;
}
}  // namespace

TEST(input, plain_and_gzip_give_the_same_lines) {
  std::string text;
  for (int i = 0; i < 50000; ++i) {
    text += "http://h" + std::to_string(i % 7) + ".test/" + std::to_string(i) + (i % 3 ? "\n" : "\r\n");
  }
  text += "http://last/no-newline";
  const auto plain = temp_path(".txt");
  std::ofstream(plain, std::ios::binary) << text;
  const auto gz = temp_path(".gz");
  gzFile f = gzopen(gz.c_str(), "wb");
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
  auto a = read_all(plain);
  auto b = read_all(gz);
  ASSERT_EQ(a.size(), 50001u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a[1], "http://h1.test/1");
  EXPECT_EQ(a[0], "http://h0.test/0");  // "\r" stripped
  EXPECT_EQ(a.back(), "http://last/no-newline");
  EXPECT_EQ(count_lines(plain), 50001u);
  EXPECT_FALSE(count_lines(gz).has_value());
  std::remove(plain.c_str());
  std::remove(gz.c_str());
}

TEST(input, missing_file_throws) {
  EXPECT_THROW(line_reader("/nonexistent/urls.txt"), std::runtime_error);
}

TEST(input, parse_url) {
  struct tc {
    const char* url;
    bool ok;
    const char* host;
    int port;
  };
  for (const auto& c : std::vector<tc>{
           {"http://Example.COM/a", true, "example.com", 80},
           {"https://x.test:8443", true, "x.test", 8443},
           {"http://u:p@h.test:81/?q", true, "h.test", 81},
           {"http://[::1]:8080/", true, "::1", 8080},
           {"HTTP://h/", true, "h", 80},
           {"ftp://h/", false, "", 0},
           {"http:///path", false, "", 0},
           {"h.test/path", false, "", 0},
           {"http://h:99999/", false, "", 0},
       }) {
    auto p = parse_url(c.url);
    EXPECT_EQ(p.ok, c.ok) << c.url;
    if (c.ok) {
      EXPECT_EQ(p.host, c.host) << c.url;
      EXPECT_EQ(p.port, c.port) << c.url;
    }
  }
  EXPECT_EQ(trim("  http://a/ \t"), "http://a/");
}

}  // namespace exitpool::fetch
