#include "fetch/writer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace exitpool::fetch {
namespace {

TEST(write_body_file, whole_body_renamed_into_place) {
  const auto dir = std::filesystem::temp_directory_path() / ("writer_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto f = write_body_file(dir.string(), 0xabcULL, "hello body");
  ASSERT_TRUE(f.ok);
  EXPECT_EQ(f.path, dir.string() + "/0000000000000abc.body");
  std::ifstream in(f.path);
  std::stringstream got;
  got << in.rdbuf();
  EXPECT_EQ(got.str(), "hello body");
  EXPECT_FALSE(std::filesystem::exists(f.path + ".tmp"));
  EXPECT_FALSE(write_body_file((dir / "missing").string(), 1, "x").ok);
  std::filesystem::remove_all(dir);
}

TEST(warc_records, a_response_and_a_request_member) {
  std::mt19937_64 rng(1);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
  const auto both =
      warc_records({"http://a.test/", "127.0.0.1", head, "hi", "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"}, rng);
  const auto response_only = warc_records({"http://a.test/", "", head, "hi", ""}, rng);
  ASSERT_FALSE(response_only.empty());
  EXPECT_GT(both.size(), response_only.size());
  // gzip members: 1f 8b at the start of each.
  EXPECT_EQ(static_cast<unsigned char>(both[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(both[1]), 0x8b);
}

}  // namespace
}  // namespace exitpool::fetch
