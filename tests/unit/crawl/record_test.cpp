#include "crawl/record.hpp"

#include <gtest/gtest.h>

#include "fetch/json_line.hpp"
#include "fetch/result.hpp"

namespace exitpool::crawl {
namespace {

TEST(Record, RoundTripsThroughAResultLine) {
  page_record p;
  p.depth = 3;
  p.links = {"http://a.test/x", "http://a.test/q?a=\"b\"&c=\\", "http://a.test/\xff"};
  p.links_truncated = true;
  p.redirect = "http://a.test/y";
  p.lease = 1234567;
  fetch::fetch_result r;
  r.url = "http://a.test/";
  r.status = 200;
  r.inline_body = true;
  r.body = R"(<a href="/z">,"depth":9,"links":["http://evil.test/"]</a>)";
  append_page_record(r.extra, p);
  std::string line;
  fetch::append_result_line(line, r);
  line.pop_back();  // the '\n'
  ASSERT_TRUE(fetch::complete_object(line));
  auto back = read_page_record(line);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->depth, 3u);
  EXPECT_EQ(back->links, p.links);
  EXPECT_TRUE(back->links_truncated);
  EXPECT_EQ(back->redirect, "http://a.test/y");
  EXPECT_EQ(back->lease, 1234567u);
}

TEST(Record, EmptyAndMissing) {
  page_record p;
  std::string extra;
  append_page_record(extra, p);
  EXPECT_EQ(extra, ",\"depth\":0,\"links\":[]");
  auto back = read_page_record("{\"url\":\"http://a.test/\"" + extra + "}");
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->links.empty());
  EXPECT_FALSE(read_page_record("{\"url\":\"http://a.test/\",\"error\":null}"));
  EXPECT_FALSE(read_page_record("{\"url\":\"x\",\"depth\":1,\"links\":[\"unterminated"));
}

}  // namespace
}  // namespace exitpool::crawl
