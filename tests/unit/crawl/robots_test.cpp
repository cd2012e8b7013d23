#include "crawl/robots.hpp"

#include <gtest/gtest.h>

#include <string>

namespace exitpool::crawl {
namespace {

TEST(Robots, PatternMatching) {
  struct c {
    const char* pattern;
    const char* path;
    bool match;
  } cases[] = {
      {"/", "/anything", true},
      {"/fish", "/fish.html", true},
      {"/fish", "/Fish.html", false},
      {"/fish/", "/fish", false},
      {"/*.php", "/index.php", true},
      {"/*.php", "/folder/any.php?x", true},
      {"/*.php$", "/index.php", true},
      {"/*.php$", "/index.php?x", false},
      {"/fish*", "/fishheads", true},
      {"/a*b*c", "/aXXbYYc", true},
      {"/a*b*c$", "/aXXbYYcd", false},
      {"$", "/", false},
      {"/x$", "/x", true},
      {"*", "/", true},
  };
  for (const auto& t : cases) {
    EXPECT_EQ(robots_pattern_matches(t.pattern, t.path), t.match) << t.pattern << " " << t.path;
  }
}

TEST(Robots, GroupsAndLongestMatch) {
  const std::string text =
      "# comment\n"
      "User-agent: other\n"
      "Disallow: /\n"
      "\n"
      "User-agent: *\n"
      "Disallow: /private\n"
      "Allow: /private/open\n"
      "Crawl-delay: 9\n"
      "\n"
      "User-agent: Exitpool-Crawl\n"
      "User-agent: another\n"
      "Disallow: /secret\n"
      "Allow: /secret/ok$\n"
      "Disallow: /page\n"
      "Allow: /page\n"
      "Crawl-delay: 0.5\n"
      "Sitemap: http://a.test/sitemap.xml\n";
  const auto ours = robots_rules::parse(text, "exitpool-crawl");
  EXPECT_TRUE(ours.allowed("/private/x"));  // only our group applies
  EXPECT_FALSE(ours.allowed("/secret/x"));
  EXPECT_TRUE(ours.allowed("/secret/ok"));
  EXPECT_FALSE(ours.allowed("/secret/ok/more"));
  EXPECT_TRUE(ours.allowed("/page"));  // a tie: Allow wins
  EXPECT_TRUE(ours.allowed("/robots.txt"));
  ASSERT_TRUE(ours.crawl_delay());
  EXPECT_DOUBLE_EQ(*ours.crawl_delay(), 0.5);
  EXPECT_EQ(ours.sitemaps().size(), 1u);

  const auto star = robots_rules::parse(text, "somebot");
  EXPECT_FALSE(star.allowed("/private"));
  EXPECT_FALSE(star.allowed("/private/x"));
  EXPECT_TRUE(star.allowed("/private/open/x"));
  EXPECT_TRUE(star.allowed("/public"));
  EXPECT_DOUBLE_EQ(*star.crawl_delay(), 9);

  const auto other = robots_rules::parse(text, "other");
  EXPECT_FALSE(other.allowed("/"));
}

TEST(Robots, MergesGroupsAndIgnoresJunk) {
  const std::string text =
      "user-agent: bot\r\ndisallow: /a\r\n\r\nfoo bar baz\r\n\x01\x02\xff\xfe garbage\r\nUSER-AGENT: bot\r\n"
      "DISALLOW: /b\r\nDisallow:\r\n";
  const auto r = robots_rules::parse(text, "bot");
  EXPECT_FALSE(r.allowed("/a"));
  EXPECT_FALSE(r.allowed("/b"));
  EXPECT_TRUE(r.allowed("/c"));
  EXPECT_EQ(r.rule_count(), 2u);
}

TEST(Robots, NoGroupAllowsEverything) {
  EXPECT_TRUE(robots_rules::parse("Disallow: /\n", "bot").allowed("/x"));  // a rule outside any group
  EXPECT_TRUE(robots_rules::parse("", "bot").allowed("/x"));
  EXPECT_TRUE(robots_rules().allowed("/x"));
}

TEST(Robots, SizeIsCapped) {
  std::string text = "User-agent: *\n";
  while (text.size() < robots_max_bytes) {
    text += "Allow: /padding-padding-padding\n";
  }
  text += "Disallow: /late\n";  // beyond 500 KiB: not read
  const auto r = robots_rules::parse(text, "bot");
  EXPECT_TRUE(r.truncated());
  EXPECT_TRUE(r.allowed("/late"));
  EXPECT_LE(r.rule_count(), robots_max_rules);
  std::string garbage(10 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < garbage.size(); ++i) {
    garbage[i] = static_cast<char>((i * 7919) & 0xff);
  }
  const auto g = robots_rules::parse(garbage, "bot");  // bounded time, no crash
  EXPECT_TRUE(g.truncated());
}

TEST(Robots, PercentEncodingOfPatterns) {
  const auto r = robots_rules::parse("User-agent: *\nDisallow: /caf\xc3\xa9\nDisallow: /x%2fy\n", "bot");
  EXPECT_FALSE(r.allowed("/caf%C3%A9"));
  EXPECT_FALSE(r.allowed("/x%2Fy"));
}

TEST(Robots, WhatAFetchMeans) {
  EXPECT_EQ(robots_policy_of(200, "User-agent: *\nDisallow: /\n", "bot").access, robots_access::rules);
  EXPECT_EQ(robots_policy_of(404, "", "bot").access, robots_access::allow_all);
  EXPECT_EQ(robots_policy_of(403, "", "bot").access, robots_access::allow_all);
  EXPECT_EQ(robots_policy_of(301, "", "bot").access, robots_access::allow_all);
  EXPECT_EQ(robots_policy_of(500, "", "bot").access, robots_access::disallow_all);
  EXPECT_EQ(robots_policy_of(503, "", "bot").access, robots_access::disallow_all);
  EXPECT_EQ(robots_policy_of(429, "", "bot").access, robots_access::disallow_all);
  EXPECT_EQ(robots_policy_of(0, "", "bot").access, robots_access::disallow_all);
  EXPECT_EQ(product_token("exitpool-crawl/0.1 (+http://x)"), "exitpool-crawl");
}

}  // namespace
}  // namespace exitpool::crawl
