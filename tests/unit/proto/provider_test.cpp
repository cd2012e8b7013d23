#include "proto/provider.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/pool_line.hpp"

namespace exitpool::proto {
namespace {

std::string render_text(std::string_view tpl, const render_input& in) {
  auto t = compile_template(tpl);
  EXPECT_TRUE(t.tpl) << t.error;
  std::string out;
  if (t.tpl) {
    render(*t.tpl, in, out);
  }
  return out;
}

TEST(provider_template, unfilled_placeholders_drop_their_key) {
  render_input in{.user = "acme", .pass = "pw", .session = 1, .sesstime_minutes = 0};
  EXPECT_EQ(render_text("{user}-country-{country}-session-{session}", in), "acme-session-100000000000");
  in.country = "de";
  EXPECT_EQ(render_text("{user}-country-{country}-session-{session}", in), "acme-country-de-session-100000000000");
  in.has_session = false;
  EXPECT_EQ(render_text("{user}-country-{country}-session-{session}-x", in), "acme-country-de-x");
  EXPECT_EQ(render_text("{user}-res-{state|any}", in), "acme-res-any");
}

TEST(provider_template, styles) {
  const render_input in{.user = "u",
                        .pass = "p",
                        .country = "gb",
                        .city = "new_york",
                        .session = 32 * 32 + 31,  // "v01" then zeros: base 32, least significant first
                        .sesstime_minutes = 10};
  EXPECT_EQ(render_text("{country:upper}", in), "GB");
  EXPECT_EQ(render_text("{country:uk}", in), "uk");
  EXPECT_EQ(render_text("{city}|{city:compact}|{city:plus}", in), "new_york|newyork|new+york");
  EXPECT_EQ(render_text("{session:8}", in), "v0100000");
  EXPECT_EQ(render_text("{session:digits}", in), std::to_string(1 + (32 * 32 + 31)));
  EXPECT_EQ(render_text("{sesstime}/{sesstime:seconds}/{sesstime:m}", in), "10/600/10m");
}

TEST(provider_template, rejects_bad_templates) {
  for (const char* bad : {"{user}-{colour}", "{user", "{user}}", "{country:sideways}", "{user}:x", "a@{user}",
                          "{user}%", "{session:upper}", "{country|a:b}"}) {
    EXPECT_FALSE(compile_template(bad).tpl) << bad;
  }
  EXPECT_NE(compile_template("{user}-{colour}").error.find("unknown placeholder '{colour}'"), std::string::npos);
}

struct preset_case {
  std::string line;
  render_input in;
  std::string user;
  std::string pass;
};

// The exact strings each preset sends (README.md "Provider gateways" names the pages).
TEST(provider_template, presets_render_each_providers_grammar) {
  const render_input full{.country = "us", .state = "ny", .city = "new_york", .session = 7, .sesstime_minutes = 30};
  const render_input none{.session = 7};
  const std::vector<preset_case> cases = {
      {"http://brd-customer-c1-zone-z1:pw@h:1 provider=brightdata", full,
       "brd-customer-c1-zone-z1-country-us-state-ny-city-newyork-session-700000000000", "pw"},
      {"http://brd-customer-c1-zone-z1:pw@h:1 provider=brightdata", none,
       "brd-customer-c1-zone-z1-session-700000000000", "pw"},
      {"http://acme:pw@h:1 provider=oxylabs", full,
       "customer-acme-cc-US-st-ny-city-new_york-sessid-700000000000-sesstime-30", "pw"},
      {"http://acme:pw@h:1 provider=decodo", full,
       "user-acme-country-us-state-ny-city-new_york-session-700000000000-sessionduration-30", "pw"},
      {"http://acme:pw@h:1 provider=iproyal", full, "acme",
       "pw_country-us_state-ny_city-newyork_session-70000000_lifetime-30m"},
      {"http://acme:pw@h:1 provider=iproyal", none, "acme", "pw_session-70000000"},
      {"socks5://123:key@h:1 provider=soax", full,
       "package-123-country-us-region-ny-city-new+york-sessionid-700000000000-sessionlength-1800", "key"},
      {"http://acme:pw@h:1 provider=netnut", full, "acme-res-us-sid-8", "pw"},
      {"http://acme:pw@h:1 provider=netnut", none, "acme-res-any-sid-8", "pw"},
      {"http://acme:pw@h:1 provider=abcproxy", full,
       "acme-zone-abc-region-us-st-ny-city-new_york-session-700000000000-sessTime-30", "pw"},
  };
  for (const auto& c : cases) {
    auto parsed = parse_pool_line(c.line);
    ASSERT_TRUE(parsed.spec) << c.line << ": " << parsed.error;
    ASSERT_TRUE(parsed.spec->provider) << c.line;
    const auto& p = *parsed.spec->provider;
    render_input in = c.in;
    in.user = parsed.spec->user;
    in.pass = parsed.spec->pass;
    std::string user;
    std::string pass;
    render(p.user_tpl, in, user);
    render(p.pass_tpl, in, pass);
    EXPECT_EQ(user, c.user) << c.line;
    EXPECT_EQ(pass, c.pass) << c.line;
  }
}

TEST(provider_line, declares_what_it_serves) {
  auto parsed = parse_pool_line("http://u:p@h:1 provider=decodo countries=us,DE cities=* type=residential id=dec");
  ASSERT_TRUE(parsed.spec) << parsed.error;
  const auto& p = *parsed.spec->provider;
  EXPECT_TRUE(p.serves("", "", "", ""));
  EXPECT_TRUE(p.serves("de", "berlin", "", ""));
  EXPECT_FALSE(p.serves("fr", "", "", ""));
  EXPECT_TRUE(p.serves("us", "", "ca", ""));
  EXPECT_FALSE(p.serves("us", "", "", "21928"));  // decodo's preset has no {asn}
  EXPECT_EQ(parsed.spec->type, "residential");
  EXPECT_TRUE(parsed.spec->tags.empty());  // provider keys are not tags
  auto none = parse_pool_line("http://u:p@h:1 provider=decodo");
  ASSERT_TRUE(none.spec);
  EXPECT_FALSE(none.spec->provider->serves("us", "", "", ""));  // no countries= declared
  auto limits = parse_pool_line("socks5://u:p@h:1 user_template={user}-s-{session} rate=2.5 max_sessions=40");
  ASSERT_TRUE(limits.spec) << limits.error;
  EXPECT_EQ(limits.spec->provider->rate, 2.5);
  EXPECT_EQ(limits.spec->provider->max_sessions, 40);
}

TEST(provider_line, bad_input_is_a_clear_error_at_load) {
  struct bad {
    std::string text;
    std::string want;
  };
  const std::vector<bad> cases = {
      {"http://u:p@h:1 provider=acme", "unknown provider 'acme'"},
      {"http://u:p@h:1 user_template={user}-{colour}", "unknown placeholder '{colour}'"},
      {"http://u:p@h:1 user_template={user}-country-{country}", "has no {session}"},
      {"http://u%3Ax:p@h:1 provider=oxylabs", "cannot carry ':', '@', '%'"},
      {"http://u:p%40q@h:1 provider=oxylabs", "cannot carry ':', '@', '%'"},
      {"http://u:p%25@h:1 provider=oxylabs", "cannot carry ':', '@', '%'"},
      {"http://u:p@h:1 provider=oxylabs country=us", "countries= and cities="},
      {"http://u:p@h:1 countries=us", "belong to provider lines"},
      {"direct://127.0.0.1 provider=oxylabs", "not direct://"},
      {"http://h:1 provider=oxylabs", "needs the account's user"},
      {"http://u:p@h:1 provider=netnut cities=*", "cities= needs a {city}"},
      {"http://u:p@h:1 provider=oxylabs rate=0", "bad rate"},
      {"http://u:p@h:1 provider=oxylabs max_sessions=x", "bad max_sessions"},
      {"http://u:p@h:1 provider=oxylabs rotate=maybe", "bad rotate"},
  };
  for (const auto& c : cases) {
    try {
      parse_pool_text("http://ok:1\n" + c.text + "\n", "pool.txt");
      ADD_FAILURE() << c.text << " loaded";
    } catch (const pool_error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("pool.txt:2: ", 0), 0u) << what;
      EXPECT_NE(what.find(c.want), std::string::npos) << c.text << " -> " << what;
    }
  }
  // rotate=off: the provider decides alone, no {session} needed.
  EXPECT_TRUE(parse_pool_line("http://u:p@h:1 user_template={user}-country-{country} rotate=off").spec);
}

}  // namespace
}  // namespace exitpool::proto
