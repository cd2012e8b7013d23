#include "crawl/links.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace exitpool::crawl {
namespace {

using list = std::vector<std::string>;

TEST(Links, ElementsBaseAndNofollow) {
  const std::string html = R"(<!doctype html><html><head>
<link rel="stylesheet" href="/style.css">
</head><body>
<a href="one.html">1</a>
<a href="one.html#again">1 again</a>
<A HREF="/Two.html">2</A>
<a href="http://other.test/x">3</a>
<a rel="nofollow" href="/nofollow.html">no</a>
<a rel="external NoFollow" href="/nofollow2.html">no</a>
<map><area href="area.html"></map>
<img src="/img.png"><script src="/app.js"></script>
<a href="mailto:x@y">mail</a><a>no href</a><a href="">self</a>
<template><a href="in-template.html">t</a></template>
</body></html>)";
  link_options o;
  auto got = extract_links(html, "http://a.test/dir/page.html", o);
  EXPECT_EQ(got.links, (list{"http://a.test/style.css", "http://a.test/dir/one.html", "http://a.test/Two.html",
                             "http://other.test/x", "http://a.test/dir/area.html", "http://a.test/dir/page.html",
                             "http://a.test/dir/in-template.html"}));
  EXPECT_FALSE(got.truncated);
  o.follow_nofollow = true;
  o.assets = true;
  got = extract_links(html, "http://a.test/dir/page.html", o);
  EXPECT_EQ(got.links.size(), 11u);
}

TEST(Links, BaseHrefAppliesToEarlierLinksToo) {
  const std::string html = R"(<a href="x.html">x</a><base href="http://b.test/sub/"><a href="y.html">y</a>
<base href="http://ignored.test/">)";
  auto got = extract_links(html, "http://a.test/p", link_options{});
  EXPECT_EQ(got.base, "http://b.test/sub/");
  EXPECT_EQ(got.links, (list{"http://b.test/sub/x.html", "http://b.test/sub/y.html"}));
  // A relative base resolves against the page.
  got = extract_links(R"(<base href="../up/"><a href="z">z</a>)", "http://a.test/d/e/p", link_options{});
  EXPECT_EQ(got.links, (list{"http://a.test/d/up/z"}));
}

TEST(Links, MetaRobotsNofollow) {
  const std::string html = R"(<meta name="robots" content="noindex, nofollow"><a href="/x">x</a>)";
  auto got = extract_links(html, "http://a.test/", link_options{});
  EXPECT_TRUE(got.nofollow);
  EXPECT_TRUE(got.links.empty());
}

TEST(Links, Bounded) {
  std::string html;
  for (int i = 0; i < 100000; ++i) {
    html += "<a href=\"/p" + std::to_string(i) + "\">x</a>";
  }
  link_options o;
  o.max_links = 1000;
  auto got = extract_links(html, "http://a.test/", o);
  EXPECT_EQ(got.links.size(), 1000u);
  EXPECT_TRUE(got.truncated);
  o.max_html = 1000;  // parse only the start
  got = extract_links(html, "http://a.test/", o);
  EXPECT_LT(got.links.size(), 100u);
  EXPECT_TRUE(got.truncated);
}

TEST(Links, DeepNestingAndGarbage) {
  std::string html(200000, '\0');
  for (std::size_t i = 0; i < html.size(); ++i) {
    html[i] = static_cast<char>((i * 131) & 0xff);
  }
  (void)extract_links(html, "http://a.test/", link_options{});
  std::string deep;
  for (int i = 0; i < 400; ++i) {
    deep += "<div><p>x<li>y<br><img src=/i.png>";
  }
  deep += "<a href=\"/deep\">d</a>";
  auto got = extract_links(deep, "http://a.test/", link_options{});
  EXPECT_EQ(got.links, (list{"http://a.test/deep"}));
  EXPECT_FALSE(got.truncated);
  // As deep as --max-html allows (4 MiB of <div>): cut at max_depth, in well under a second
  // (uncut, gumbo takes hours: its scope checks walk the whole stack per element).
  std::string deeper = "<a href=\"/first\">f</a>";
  while (deeper.size() < link_options{}.max_html - 64) {
    deeper += "<div>";
  }
  deeper += "<a href=\"/deepest\">d</a>";
  const auto t0 = std::chrono::steady_clock::now();
  got = extract_links(deeper, "http://a.test/", link_options{});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_TRUE(got.truncated);
  EXPECT_EQ(got.links, (list{"http://a.test/first"}));
}

TEST(Links, NestingCut) {
  EXPECT_EQ(nesting_cut("<div><div></div></div>", 2), 22u);
  EXPECT_EQ(nesting_cut("<div><div><div>", 2), 10u);
  EXPECT_EQ(nesting_cut("<div></div><div></div><div></div>", 1), 33u);
  EXPECT_EQ(nesting_cut("<p>a<p>b<li>c<br><x/><img src=y><div>", 1), 37u);    // only the div nests
  EXPECT_EQ(nesting_cut("a < b <3 <!-- <div> --> <!doctype html>", 0), 14u);  // tags in comments count
}

TEST(Links, SitemapLocs) {
  bool index = true;
  auto locs = sitemap_locs(
      "<urlset><url><loc>http://a.test/x?a=1&amp;b=2</loc></url><url><loc>http://a.test/y</loc></url></urlset>", index);
  EXPECT_FALSE(index);
  EXPECT_EQ(locs, (list{"http://a.test/x?a=1&b=2", "http://a.test/y"}));
  locs = sitemap_locs("<sitemapindex><sitemap><loc>http://a.test/s.xml</loc></sitemap><loc>unclosed", index);
  EXPECT_TRUE(index);
  EXPECT_EQ(locs, (list{"http://a.test/s.xml"}));
  EXPECT_EQ(sitemap_locs("<loc>1</loc><loc>2</loc><loc>3</loc>", index, 2).size(), 2u);
}

TEST(Links, IsHtml) {
  EXPECT_TRUE(is_html("text/html"));
  EXPECT_TRUE(is_html("Text/HTML; charset=utf-8"));
  EXPECT_TRUE(is_html("application/xhtml+xml"));
  EXPECT_FALSE(is_html("text/plain"));
  EXPECT_FALSE(is_html(""));
}

}  // namespace
}  // namespace exitpool::crawl
