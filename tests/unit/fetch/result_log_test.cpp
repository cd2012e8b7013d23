#include "fetch/result_log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "fetch/result.hpp"

namespace exitpool::fetch {

namespace {
std::string line_for(const std::string& url) {
  fetch_result r;
  r.url = url;
  r.status = 200;
  std::string out;
  append_result_line(out, r);
  return out;
}
std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST(result_log, resume_keeps_whole_lines_and_cuts_a_torn_tail) {
  const std::string path = ::testing::TempDir() + "fetch_log_" + std::to_string(::getpid()) + ".jsonl";
  const std::string a = line_for("http://a/"), b = line_for("http://b/\xff"), c = line_for("http://c/");
  { std::ofstream(path, std::ios::binary) << a << b << c.substr(0, c.size() / 2); }
  url_set done;
  scan_info info;
  {
    result_log log(path, true, done, info);
    EXPECT_EQ(info.lines, 2u);
    EXPECT_EQ(info.truncated_bytes, c.size() / 2);
    EXPECT_TRUE(done.contains(fingerprint("http://a/")));
    EXPECT_TRUE(done.contains(fingerprint("http://b/\xff")));
    EXPECT_FALSE(done.contains(fingerprint("http://c/")));
    EXPECT_TRUE(log.append(c));
  }
  EXPECT_EQ(slurp(path), a + b + c);

  // Garbage in the middle (zeros after a power cut): everything from there is cut.
  { std::ofstream(path, std::ios::binary) << a << std::string(10, '\0') << "\n" << b; }
  url_set done2;
  scan_info info2;
  { result_log log(path, true, done2, info2); }
  EXPECT_EQ(info2.lines, 1u);
  EXPECT_EQ(slurp(path), a);

  // Without resume the file starts empty.
  url_set done3;
  scan_info info3;
  { result_log log(path, false, done3, info3); }
  EXPECT_EQ(slurp(path), "");
  std::remove(path.c_str());
}

TEST(result_log, warc_stays_in_step_with_the_lines) {
  const std::string base = ::testing::TempDir() + "fetch_warc_" + std::to_string(::getpid());
  const std::string path = base + ".jsonl", warc = base + ".warc.gz";
  auto make = [](const std::string& url) {
    return [url](std::string& out, std::uint64_t off, std::uint64_t len) {
      fetch_result r;
      r.url = url;
      r.status = 200;
      r.warc_offset = static_cast<std::int64_t>(off);
      r.warc_length = len;
      append_result_line(out, r);
    };
  };
  {
    url_set done;
    scan_info info;
    result_log log(path, false, done, info, warc, "INFO");
    EXPECT_TRUE(log.append_with_warc("AAAA", make("http://a/")));
    EXPECT_TRUE(log.append_with_warc("BBBBBB", make("http://b/")));
  }
  EXPECT_EQ(slurp(warc), "INFOAAAABBBBBB");
  EXPECT_NE(slurp(path).find("\"warc_offset\":4,\"warc_length\":4}"), std::string::npos) << slurp(path);
  // A crash after the records of c but before its line; and b's records cut short (power cut).
  { std::ofstream(warc, std::ios::binary | std::ios::app) << "CC"; }
  {
    url_set done;
    scan_info info;
    result_log log(path, true, done, info, warc, "INFO");
    EXPECT_EQ(info.lines, 2u);
    EXPECT_EQ(info.warc_truncated_bytes, 2u);
  }
  EXPECT_EQ(slurp(warc), "INFOAAAABBBBBB");
  {
    std::string w = slurp(warc);
    std::ofstream(warc, std::ios::binary | std::ios::trunc) << w.substr(0, w.size() - 3);
  }
  {
    url_set done;
    scan_info info;
    result_log log(path, true, done, info, warc, "INFO");
    EXPECT_EQ(info.lines, 1u);  // b's line points past the WARC's end: torn
    EXPECT_FALSE(done.contains(fingerprint("http://b/")));
  }
  EXPECT_EQ(slurp(warc), "INFOAAAA");
  std::remove(path.c_str());
  std::remove(warc.c_str());
}

}  // namespace exitpool::fetch
