#include "fetch/transfer.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace exitpool::fetch {
namespace {

struct curl_global {
  curl_global() { curl_global_init(CURL_GLOBAL_ALL); }
  ~curl_global() { curl_global_cleanup(); }
};

std::optional<finished_transfer> wait_done(transfer_engine& t) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    t.perform();
    if (auto d = t.next_done()) {
      return d;
    }
    t.poll(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

TEST(transfer_engine, refused_option_ends_the_transfer_with_its_name) {
  curl_global g;
  transfer_engine t(1);
  response_capture cap;
  int tag = 0;
  // libcurl refuses strings over 8 MB (CURL_MAX_INPUT_LENGTH).
  const std::string huge = "http://a.test/" + std::string(9'000'000, 'x');
  t.start(huge, proto::exit_spec{}, 0, transfer_options{}, cap, &tag);
  auto d = t.next_done();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->tag, &tag);
  EXPECT_EQ(d->setup_error.rfind("CURLOPT_URL: ", 0), 0u) << d->setup_error;
  EXPECT_FALSE(t.next_done());
}

TEST(transfer_engine, finished_transfer_comes_back_with_its_tag_and_info) {
  curl_global g;
  transfer_engine t(2);
  response_capture cap;
  int tag = 0;
  proto::exit_spec direct;
  direct.host = "127.0.0.1";
  transfer_options o;
  o.connect_timeout_ms = 2000;
  // Port 1 on loopback: refused at once. The handle is reused for a second transfer.
  for (int i = 0; i < 2; ++i) {
    t.start("http://127.0.0.1:1/", direct, 1, o, cap, &tag);
    auto d = wait_done(t);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->tag, &tag);
    EXPECT_TRUE(d->setup_error.empty()) << d->setup_error;
    EXPECT_EQ(d->rc, CURLE_COULDNT_CONNECT) << curl_easy_strerror(d->rc);
    EXPECT_EQ(d->info.status, 0);
    EXPECT_NE(std::string(cap.errbuf), "");
  }
}

TEST(response_capture, header_by_lower_case_name_and_reset) {
  response_capture c;
  c.headers = {{"content-type", "text/html"}, {"retry-after", "120"}};
  c.body = "x";
  EXPECT_EQ(c.header("retry-after"), "120");
  EXPECT_EQ(c.header("location"), "");
  c.reset();
  EXPECT_TRUE(c.headers.empty());
  EXPECT_TRUE(c.body.empty());
}

}  // namespace
}  // namespace exitpool::fetch
