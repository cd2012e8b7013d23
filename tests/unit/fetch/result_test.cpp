#include "fetch/result.hpp"

#include <gtest/gtest.h>

#include "fetch/json_line.hpp"

namespace exitpool::fetch {

TEST(result, line_shape) {
  fetch_result r;
  r.url = "http://a.test/x";
  r.final_url = "http://a.test/y";
  r.status = 200;
  r.headers = {{"content-type", "text/plain"}};
  std::string body = "hi \"there\"\n";
  r.body = body;
  r.inline_body = true;
  r.body_size = body.size();
  r.exit_id = "d1";
  r.exit_ip = "127.0.0.21";
  r.attempts = 2;
  r.timings = {0.1, 0.25, 0, 1.5, 2};
  std::string out;
  append_result_line(out, r);
  EXPECT_EQ(
      out,
      "{\"url\":\"http://a.test/x\",\"final_url\":\"http://a.test/y\",\"status\":200,\"headers\":{\"content-type\":"
      "\"text/plain\"},\"body\":\"hi \\\"there\\\"\\n\",\"body_size\":11,\"exit\":\"d1\",\"exit_ip\":\"127.0.0.21\","
      "\"attempts\":2,\"timings\":{\"dns\":0.100,\"connect\":0.250,\"tls\":0.000,\"ttfb\":1.500,\"total\":2.000},"
      "\"error\":null}\n");
  ASSERT_EQ(out.back(), '\n');
  EXPECT_TRUE(complete_object(std::string_view(out).substr(0, out.size() - 1)));
  EXPECT_EQ(read_url_field(out), r.url);
}

TEST(result, binary_body_is_base64_and_error_result) {
  fetch_result r;
  r.url = "http://b.test/";
  std::string body("\xff\x00\x01", 3);
  r.body = body;
  r.inline_body = true;
  std::string out;
  append_result_line(out, r);
  EXPECT_NE(out.find("\"body_base64\":\"/wAB\""), std::string::npos) << out;
  fetch_result e;
  e.url = "http://c.test/";
  e.error = "3 attempts failed: d1: timeout";
  out.clear();
  append_result_line(out, e);
  EXPECT_NE(out.find("\"status\":0"), std::string::npos);
  EXPECT_NE(out.find("\"exit\":null"), std::string::npos);
  EXPECT_NE(out.find("\"error\":\"3 attempts failed: d1: timeout\""), std::string::npos);
}

}  // namespace exitpool::fetch
