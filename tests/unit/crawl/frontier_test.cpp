#include "crawl/frontier.hpp"

#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace exitpool::crawl {
namespace {

using std::chrono::seconds;

const time_point t0 = time_point{} + std::chrono::hours(1000);

std::vector<work_item> next(frontier& f, time_point now) {
  std::vector<work_item> out;
  f.next(now, out);
  return out;
}

// A frontier that spills to `path` past `queue_memory` URLs (robots.txt off).
frontier_config spilling(const std::string& path, int window, std::size_t queue_memory, std::size_t block) {
  frontier_config c;
  c.window = window;
  c.ignore_robots = true;
  c.queue_memory = queue_memory;
  c.spill_path = path;
  c.spill_block = block;
  return c;
}

TEST(Frontier, SpillsPastQueueMemoryAndKeepsBreadthFirstOrder) {
  const std::string path = ::testing::TempDir() + "frontier_test.spill";
  frontier f(spilling(path, 4, 100, 16));
  for (int i = 0; i < 3000; ++i) {
    f.add("http://a.test/" + std::to_string(i), static_cast<std::uint32_t>(i % 5), 0);
    f.add("http://b.test/" + std::to_string(i), 0, 0);
  }
  auto cnt = f.counts();
  EXPECT_EQ(cnt.queued, 6000u);
  EXPECT_GT(cnt.spilled, 5000u);  // memory: ~100, plus each host's window and block being filled
  EXPECT_LE(cnt.queued - cnt.spilled, 100u + 2 * (4 + 16));
  std::vector<int> a;
  for (int round = 0; !f.finished() && round < 10000; ++round) {
    for (auto& w : next(f, t0)) {
      if (w.key == "http://a.test") {
        EXPECT_EQ(w.depth, static_cast<std::uint32_t>(std::stoi(w.url.substr(14)) % 5));
        a.push_back(std::stoi(w.url.substr(14)));
      }
      f.page_done(w.key);
    }
  }
  ASSERT_EQ(a.size(), 3000u);
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(a[static_cast<std::size_t>(i)], i);
  }
  EXPECT_EQ(f.counts().spilled, 0u);
  EXPECT_GT(f.counts().spilled_total, 5000u);
  std::remove(path.c_str());
}

TEST(Frontier, CutSpillFileStopsTheCrawlWithFileAndLine) {
  const std::string path = ::testing::TempDir() + "frontier_cut_test.spill";
  frontier f(spilling(path, 2, 10, 8));
  for (int i = 0; i < 100; ++i) {
    f.add("http://a.test/" + std::to_string(i), 0, 0);
  }
  ASSERT_GT(f.counts().spilled, 0u);
  ASSERT_EQ(::truncate(path.c_str(), 0), 0);  // the disk lost it
  try {
    for (int round = 0; round < 100; ++round) {
      for (auto& w : next(f, t0)) {
        f.page_done(w.key);
      }
    }
    FAIL() << "a cut spill file was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ends early"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

TEST(Frontier, RobotsFirstThenPagesWithinTheWindow) {
  frontier_config c;
  c.window = 2;
  frontier f(c);
  EXPECT_TRUE(f.add("http://a.test/1", 0, 0));
  EXPECT_FALSE(f.add("http://a.test/1", 1, 0));  // dedup
  EXPECT_TRUE(f.add("http://a.test/2", 1, 0));
  EXPECT_TRUE(f.add("http://a.test/private/3", 1, 0));
  EXPECT_TRUE(f.add("http://a.test/4", 1, 0));
  auto w = next(f, t0);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_TRUE(w[0].robots);
  EXPECT_EQ(w[0].url, "http://a.test/robots.txt");
  EXPECT_EQ(w[0].key, "http://a.test");
  EXPECT_EQ(w[0].host, "a.test");
  EXPECT_TRUE(next(f, t0).empty());  // pages wait for robots.txt
  EXPECT_FALSE(f.finished());
  f.robots_fetched("http://a.test", 200, "User-agent: *\nDisallow: /private\nCrawl-delay: 2\n", t0);
  w = next(f, t0);
  ASSERT_EQ(w.size(), 2u);  // the window
  EXPECT_EQ(w[0].url, "http://a.test/1");
  EXPECT_EQ(w[1].url, "http://a.test/2");
  EXPECT_DOUBLE_EQ(w[0].crawl_delay_s, 2);
  EXPECT_TRUE(next(f, t0).empty());
  f.page_done("http://a.test");
  w = next(f, t0);
  ASSERT_EQ(w.size(), 1u);  // /private/3 disallowed, /4 goes
  EXPECT_EQ(w[0].url, "http://a.test/4");
  EXPECT_EQ(f.counts().disallowed, 1u);
  f.page_done("http://a.test");
  f.page_done("http://a.test");
  EXPECT_TRUE(f.finished());
}

TEST(Frontier, UnreachableRobotsWaitsThenGivesUp) {
  frontier_config c;
  c.robots_retry = seconds(10);
  c.robots_tries = 3;
  frontier f(c);
  f.add("http://a.test/1", 0, 0);
  ASSERT_EQ(next(f, t0).size(), 1u);
  f.robots_fetched("http://a.test", 503, "", t0);
  EXPECT_TRUE(next(f, t0 + seconds(9)).empty());
  ASSERT_EQ(f.next_wake(), t0 + seconds(10));
  auto w = next(f, t0 + seconds(10));
  ASSERT_EQ(w.size(), 1u);
  EXPECT_TRUE(w[0].robots);
  f.robots_fetched("http://a.test", 0, "", t0 + seconds(10));  // no answer: again unreachable
  EXPECT_TRUE(next(f, t0 + seconds(29)).empty());              // the retry doubles: 20 s
  EXPECT_FALSE(f.finished());
  w = next(f, t0 + seconds(30));
  ASSERT_EQ(w.size(), 1u);
  EXPECT_TRUE(w[0].robots);
  f.robots_fetched("http://a.test", 500, "", t0 + seconds(30));
  EXPECT_TRUE(next(f, t0 + seconds(30)).empty());  // three tries failed: given up
  EXPECT_EQ(f.counts().robots_unreachable, 1u);
  EXPECT_TRUE(f.finished());
}

TEST(Frontier, NotFoundAllowsAllAndRulesExpire) {
  frontier_config c;
  c.robots_ttl = seconds(100);
  frontier f(c);
  f.add("http://a.test/1", 0, 0);
  next(f, t0);
  f.robots_fetched("http://a.test", 404, "", t0);
  ASSERT_EQ(next(f, t0).size(), 1u);
  f.add("http://a.test/2", 1, 0);
  f.page_done("http://a.test");
  auto w = next(f, t0 + seconds(101));  // expired: robots.txt again before the next page
  ASSERT_EQ(w.size(), 1u);
  EXPECT_TRUE(w[0].robots);
}

TEST(Frontier, IgnoreRobotsMaxPagesAndHostsApart) {
  frontier_config c;
  c.ignore_robots = true;
  c.max_pages = 3;
  frontier f(c);
  f.count_done(1);  // one page done before a resume
  f.add("http://a.test/1", 0, 0);
  f.add("http://b.test:8080/1", 0, 0);
  f.add("http://b.test:8080/2", 0, 0);
  auto w = next(f, t0);
  ASSERT_EQ(w.size(), 2u);  // 1 done + 2 handed = max_pages
  EXPECT_FALSE(w[0].robots);
  EXPECT_FALSE(f.finished());
  f.page_done(w[0].key);
  f.page_done(w[1].key);
  EXPECT_TRUE(f.finished());  // one left queued, but the budget is spent
  EXPECT_EQ(f.counts().queued, 1u);
}

TEST(Frontier, SitemapsNamedByRobotsTxt) {
  frontier_config c;
  c.sitemaps = true;
  frontier f(c);
  f.add("http://a.test/1", 0, 0);
  ASSERT_EQ(next(f, t0).size(), 1u);
  f.robots_fetched("http://a.test", 200, "Sitemap: http://a.test/s.xml\nSitemap: http://a.test/s.xml\n", t0);
  auto w = next(f, t0);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_TRUE(w[0].sitemap);
  EXPECT_EQ(w[0].url, "http://a.test/s.xml");  // once
  EXPECT_EQ(w[1].url, "http://a.test/1");
  f.page_done("http://a.test");
  EXPECT_FALSE(f.finished());  // the sitemap is out
  EXPECT_FALSE(f.add_sitemap("http://a.test/s.xml"));
  f.sitemap_fetched();
  EXPECT_TRUE(f.finished());
}

TEST(Frontier, DedupIsBounded) {
  frontier f(frontier_config{}, 1 << 20);
  for (int i = 0; i < 1000000; ++i) {
    f.seen().insert(fetch::fingerprint("http://a.test/" + std::to_string(i)));
  }
  // 8 bytes per slot at <= 70% load, doubling: a million URLs in at most ~23 MiB.
  EXPECT_LE(f.memory_bytes(), 24u << 20);
  EXPECT_FALSE(f.add("http://a.test/5", 0, 0));
  EXPECT_TRUE(f.add("http://a.test/x", 0, 0));
}

TEST(Frontier, ManyHostsCostLittleEach) {
  // A crawl that reaches a hundred thousand hosts with one URL each (link farms, sitemaps of
  // other sites): what each host costs the frontier besides its URL, measured on the heap.
  frontier f(frontier_config{}, 1 << 18);
  const auto before = ::mallinfo2().uordblks;
  constexpr int hosts = 100000;
  for (int i = 0; i < hosts; ++i) {
    ASSERT_TRUE(f.add("http://h" + std::to_string(i) + ".test/", 0, 0));
  }
  const auto per_host = static_cast<double>(::mallinfo2().uordblks - before) / hosts;
  std::printf("heap per host with one queued URL: %.0f bytes\n", per_host);
  // The host record (key, name, robots state, ~270 bytes), its map node (keyed by a view of
  // the record's key) and the URL: no container buffers for the empty parts of its queue
  // (504 bytes here; 1,728 with std::deque's and a copied key).
  EXPECT_LT(per_host, 600);
  EXPECT_EQ(f.counts().queued, static_cast<std::uint64_t>(hosts));
}

}  // namespace
}  // namespace exitpool::crawl
