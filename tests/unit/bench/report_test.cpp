#include "bench/report.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

namespace exitpool::bench {

namespace {

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) {
    ++n;
  }
  return n;
}

report sample() {
  report r;
  r.url = "http://127.0.0.1:8080/a?x=<b>&y=\"q\"\n";
  r.through = "via http://user:***@127.0.0.1:3128";
  r.duration_s = 2;
  r.threads = {1, 2};
  r.inflight = {1, 8};
  r.cells = plan_grid(r.threads, r.inflight);
  auto fill = [](cell& c, double rps, std::uint64_t errors) {
    c.ran = true;
    c.seconds = 2;
    c.ok = static_cast<std::uint64_t>(rps * 2);
    c.errors = errors;
    c.cpu_seconds = 0.01;
    c.p50_us = 100'000;
    c.p99_us = 120'000;
  };
  fill(r.cells[0], 10, 0);
  fill(r.cells[1], 80, 0);
  fill(r.cells[3], 79, 1);
  r.cells[3].first_error = "Connection refused";
  r.adv = advise(r.cells);
  return r;
}

}  // namespace

TEST(render_table, one_line_per_cell_and_the_advice) {
  const auto t = render_table(sample());
  EXPECT_NE(t.find("via http://user:***@127.0.0.1:3128"), std::string::npos);
  EXPECT_NE(t.find("skipped: fewer in flight than threads"), std::string::npos);
  EXPECT_NE(t.find("first error: Connection refused"), std::string::npos);
  EXPECT_NE(t.find("advice: bound by waiting"), std::string::npos);
  EXPECT_EQ(t.find('\n', t.find("<b>")), t.find("\n"));  // the URL's LF is escaped, not a line break
  EXPECT_NE(t.find("\\x0a"), std::string::npos);
  EXPECT_EQ(count(t, "\n"), 7u);  // title, header, 4 cells, advice
}

TEST(render_json, parses_and_holds_the_grid_and_the_advice) {
  const auto j = render_json(sample());
  ASSERT_EQ(j.back(), '\n');
  const auto v = boost::json::parse(j).as_object();
  EXPECT_EQ(v.at("url").as_string(), "http://127.0.0.1:8080/a?x=<b>&y=\"q\"\n");
  EXPECT_EQ(v.at("cells").as_array().size(), 4u);
  const auto& c1 = v.at("cells").as_array()[1].as_object();
  EXPECT_EQ(c1.at("threads").as_int64(), 1);
  EXPECT_EQ(c1.at("concurrency").as_int64(), 8);
  EXPECT_EQ(c1.at("ok").as_int64(), 160);
  EXPECT_DOUBLE_EQ(c1.at("rps").as_double(), 80.0);
  EXPECT_DOUBLE_EQ(c1.at("p50_ms").as_double(), 100.0);
  EXPECT_TRUE(c1.at("first_error").is_null());
  EXPECT_FALSE(v.at("cells").as_array()[2].as_object().at("ran").as_bool());
  const auto& a = v.at("advice").as_object();
  EXPECT_EQ(a.at("bound").as_string(), "waiting");
  EXPECT_EQ(a.at("threads").as_int64(), 1);
  EXPECT_EQ(a.at("concurrency").as_int64(), 8);
}

TEST(render_svg, a_square_per_cell_escaped_text) {
  const auto s = render_svg(sample());
  EXPECT_EQ(s.rfind("<?xml", 0), 0u);
  EXPECT_NE(s.find("</svg>"), std::string::npos);
  EXPECT_EQ(count(s, "<g class=\"cell\""), 4u);
  EXPECT_EQ(count(s, "stroke=\"#e6550d\""), 1u);  // the advised cell
  EXPECT_NE(s.find("data-threads=\"1\" data-concurrency=\"8\" data-rps=\"80.0\""), std::string::npos);
  EXPECT_NE(s.find("fill=\"#dddddd\""), std::string::npos);  // the skipped cell
  EXPECT_NE(s.find("&lt;b&gt;&amp;y=&quot;q&quot;"), std::string::npos);
  EXPECT_EQ(s.find("<b>"), std::string::npos);
  EXPECT_NE(s.find(">1 err<"), std::string::npos);
  for (const char ch : s) {
    EXPECT_TRUE(ch == '\n' || (ch >= 0x20 && ch < 0x7f)) << static_cast<int>(ch);
  }
}

}  // namespace exitpool::bench
