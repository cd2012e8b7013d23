#include "crawl/shared_frontier.hpp"

#include <gtest/gtest.h>

#include "fetch/url_set.hpp"

namespace exitpool::crawl {
namespace {

TEST(SharedFrontier, ItemsRoundTrip) {
  const queue_item i{2, 5, 1, "http://a.test/x|y?q=1|2"};
  const std::string s = encode_item(i);
  EXPECT_EQ(s, "2|5|1|http://a.test/x|y?q=1|2");
  auto back = decode_item(s);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->deliveries, 2u);
  EXPECT_EQ(back->depth, 5u);
  EXPECT_EQ(back->hops, 1u);
  EXPECT_EQ(back->url, i.url);
  for (const char* bad : {"", "1|2|3|", "1|2|http://a", "x|2|3|http://a", "1|2|3"}) {
    EXPECT_FALSE(decode_item(bad)) << bad;
  }
}

TEST(SharedFrontier, AdmitKeysAndDedupMembers) {
  const admit a = admit_of("http://a.test:8080/p?q", 3, 0);
  EXPECT_EQ(a.key, "http://a.test:8080");
  EXPECT_EQ(a.item, "0|3|0|http://a.test:8080/p?q");
  const std::uint64_t fp = fetch::fingerprint("http://a.test:8080/p?q");
  EXPECT_EQ(a.bucket, std::to_string(fp % 65536));
  // A signed 64-bit decimal: Redis stores it in an intset.
  EXPECT_EQ(a.member, std::to_string(static_cast<std::int64_t>(fp)));
  EXPECT_EQ(admit_of("http://a.test:8080/p?q", 0, 0).member, a.member);  // one URL, one member
  EXPECT_NE(admit_of("http://a.test:8080/p?r", 0, 0).member, a.member);
}

TEST(SharedFrontier, OpenWorkUnderMaxPages) {
  EXPECT_EQ(open_work(10, 0, 5, 0), 10);    // no limit: everything queued
  EXPECT_EQ(open_work(10, 2, 49, 50), 10);  // budget left
  EXPECT_EQ(open_work(10, 0, 50, 50), 0);   // spent: nothing more goes out, the crawl may end
  EXPECT_EQ(open_work(10, 3, 50, 50), 3);   // spent, but expired leases still go out again
  EXPECT_EQ(open_work(0, 0, 0, 50), 0);
  EXPECT_EQ(open_work(2, 5, 60, 50), 2);  // never more than what is queued
  EXPECT_EQ(open_work(-1, -1, 60, 50), 0);
}

}  // namespace
}  // namespace exitpool::crawl
