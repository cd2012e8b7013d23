#include "proto/user_params.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace exitpool::proto {
namespace {

struct valid_case {
  std::string username;
  std::string password;
  route_params want;
};

TEST(user_params, parses_valid_credentials) {
  const std::vector<valid_case> cases = {
      {"alice", "secret", {"alice", "secret", "", "", "", "", std::nullopt}},
      {"alice-country-US", "pw", {"alice", "pw", "us", "", "", "", std::nullopt}},
      {"alice-cc-de-city-Berlin-type-Residential",
       "pw",
       {"alice", "pw", "de", "berlin", "residential", "", std::nullopt}},
      {"alice-region-fr", "pw", {"alice", "pw", "fr", "", "", "", std::nullopt}},
      {"alice-session-AbC12-sesstime-30", "pw", {"alice", "pw", "", "", "", "AbC12", 30}},
      {"alice-sessid-x-sessionduration-1440", "pw", {"alice", "pw", "", "", "", "x", 1440}},
      {"alice-COUNTRY-us-sessTime-1", "pw", {"alice", "pw", "us", "", "", "", 1}},
      {"alice-zone-custom-country-us", "pw", {"alice", "pw", "us", "", "", "", std::nullopt}},
      {"alice", "secret_country-us_session-s1", {"alice", "secret", "us", "", "", "s1", std::nullopt}},
      {"alice", "secret_sesstime-10", {"alice", "secret", "", "", "", "", 10}},
      {"alice", "_country-us", {"alice", "", "us", "", "", "", std::nullopt}},
      // Not every part is a known KEY-VALUE: the whole field is the password.
      {"alice", "my_secret", {"alice", "my_secret", "", "", "", "", std::nullopt}},
      {"alice", "pw_country-us_extra", {"alice", "pw_country-us_extra", "", "", "", "", std::nullopt}},
      {"alice", "pw_c0lour-red", {"alice", "pw_c0lour-red", "", "", "", "", std::nullopt}},
      {"alice", "pw_country", {"alice", "pw_country", "", "", "", "", std::nullopt}},
      {"alice", "", {"alice", "", "", "", "", "", std::nullopt}},
      // Options in both fields merge; the same value twice is fine.
      {"alice-country-us", "pw_session-s9", {"alice", "pw", "us", "", "", "s9", std::nullopt}},
      {"alice-country-us", "pw_cc-US", {"alice", "pw", "us", "", "", "", std::nullopt}},
      {"alice-country-us-country-us", "pw", {"alice", "pw", "us", "", "", "", std::nullopt}},
      {"alice-sesstime-05", "pw", {"alice", "pw", "", "", "", "", 5}},
      // A value in the password may contain '-' (the first '-' splits).
      {"alice", "pw_session-a-b", {"alice", "pw", "", "", "", "a-b", std::nullopt}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.username + " / " + c.password);
    const auto r = parse_credentials(c.username, c.password);
    ASSERT_TRUE(r.params.has_value()) << r.error;
    EXPECT_TRUE(r.error.empty());
    EXPECT_EQ(r.params->user, c.want.user);
    EXPECT_EQ(r.params->password, c.want.password);
    EXPECT_EQ(r.params->country, c.want.country);
    EXPECT_EQ(r.params->city, c.want.city);
    EXPECT_EQ(r.params->type, c.want.type);
    EXPECT_EQ(r.params->session, c.want.session);
    EXPECT_EQ(r.params->session_minutes, c.want.session_minutes);
  }
}

struct bad_case {
  std::string username;
  std::string password;
  std::string error;
};

TEST(user_params, rejects_bad_credentials) {
  const std::vector<bad_case> cases = {
      {"alice-colour-red", "pw", "unknown option 'colour' in username"},
      {"alice-country", "pw", "option 'country' has no value in username"},
      {"alice-country-us-bogus", "pw", "unknown option 'bogus' in username"},
      {"alice-country-", "pw", "empty value for 'country' in username"},
      {"alice-country--city-x", "pw", "empty value for 'country' in username"},
      {"alice-sesstime-0", "pw", "bad sesstime '0' in username (want minutes 1..1440)"},
      {"alice-sesstime-1441", "pw", "bad sesstime '1441' in username (want minutes 1..1440)"},
      {"alice-sesstime-abc", "pw", "bad sesstime 'abc' in username (want minutes 1..1440)"},
      {"alice-sesstime--5", "pw", "empty value for 'sesstime' in username"},
      {"alice-sessTime-99999999999", "pw", "bad sessTime '99999999999' in username (want minutes 1..1440)"},
      {"alice-sessionduration-1.5", "pw", "bad sessionduration '1.5' in username (want minutes 1..1440)"},
      {"alice-country-us-cc-de", "pw", "conflicting values for 'country': 'us' in username, 'de' in username"},
      {"alice-country-us", "pw_country-de", "conflicting values for 'country': 'us' in username, 'de' in password"},
      {"alice-session-a", "pw_sessid-b", "conflicting values for 'session': 'a' in username, 'b' in password"},
      {"alice-sesstime-10", "pw_sesstime-20", "conflicting values for 'sesstime': '10' in username, '20' in password"},
      {"alice", "pw_sesstime-0", "bad sesstime '0' in password (want minutes 1..1440)"},
      {"alice", "pw_country-", "empty value for 'country' in password"},
      {"alice", "pw_colour-red", "unknown option 'colour' in password"},
      {"alice", "pw_country-us_colour-red", "unknown option 'colour' in password"},
      {"", "pw", "empty user name"},
      {"-country-us", "pw", "empty user name"},
      {"alice-session-a-sessbusy-hop", "pw", "bad sessbusy 'hop' in username (want wait or move)"},
      {"alice-sessbusy-wait", "pw_sessbusy-move",
       "conflicting values for 'sessbusy': 'wait' in username, 'move' in password"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.username + " / " + c.password);
    const auto r = parse_credentials(c.username, c.password);
    EXPECT_FALSE(r.params.has_value());
    EXPECT_EQ(r.error, c.error);
  }
}

TEST(user_params, bounds_client_chosen_keys) {
  const std::vector<bad_case> cases = {
      {"alice-session-" + std::string(65, 's'), "pw", "value of 'session' in username too long (65 bytes, at most 64)"},
      {"alice", "pw_sessid-" + std::string(100, 's'),
       "value of 'session' in password too long (100 bytes, at most 64)"},
      {"alice-city-" + std::string(65, 'c'), "pw", "value of 'city' in username too long (65 bytes, at most 64)"},
      {std::string(256, 'u'), "pw", "username too long (256 bytes, at most 255)"},
      {"alice-session-" + std::string(10000, 's'), "pw", "username too long (10014 bytes, at most 255)"},
      {"alice", std::string(256, 'p'), "password too long (256 bytes, at most 255)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.error);
    const auto r = parse_credentials(c.username, c.password);
    EXPECT_FALSE(r.params.has_value());
    EXPECT_EQ(r.error, c.error);
  }
  const auto ok = parse_credentials("alice-session-" + std::string(64, 's'), std::string(255, 'p'));
  ASSERT_TRUE(ok.params.has_value()) << ok.error;
  EXPECT_EQ(ok.params->session, std::string(64, 's'));
}

TEST(user_params, client_text_in_errors_is_escaped_and_cut) {
  const auto r = parse_credentials("alice-co\r\nuntry-x", "pw");
  EXPECT_EQ(r.error, "unknown option 'co\\x0d\\x0auntry' in username");
  const auto long_key = parse_credentials("alice-" + std::string(200, 'k') + "-v", "pw");
  EXPECT_EQ(long_key.error, "unknown option '" + std::string(32, 'k') + "...' in username");
  const auto busy = parse_credentials("alice-sessbusy-\nx", "pw");
  EXPECT_EQ(busy.error, "bad sessbusy '\\x0ax' in username (want wait or move)");
}

TEST(user_params, session_busy_says_wait_or_move) {
  EXPECT_FALSE(parse_credentials("alice-session-a", "pw").params->session_move_when_busy.has_value());
  EXPECT_EQ(parse_credentials("alice-session-a-sessbusy-move", "pw").params->session_move_when_busy, true);
  EXPECT_EQ(parse_credentials("alice-session-a-SessBusy-WAIT", "pw").params->session_move_when_busy, false);
  EXPECT_EQ(parse_credentials("alice-session-a", "pw_sessbusy-move").params->session_move_when_busy, true);
}

TEST(user_params, state_and_asn_are_for_exits_and_provider_lines_that_serve_them) {
  const auto r = parse_credentials("alice-country-us-state-NY-asn-21928", "pw");
  ASSERT_TRUE(r.params) << r.error;
  EXPECT_EQ(r.params->state, "ny");
  EXPECT_EQ(r.params->asn, "21928");
  EXPECT_EQ(parse_credentials("alice-st-ca", "pw").params->state, "ca");
  EXPECT_EQ(parse_credentials("alice", "pw_state-tx").params->state, "tx");
}

TEST(user_params, session_case_is_kept_but_session_values_compare_exactly) {
  const auto r = parse_credentials("alice-session-ABC", "pw_session-abc");
  EXPECT_FALSE(r.params.has_value());
  EXPECT_NE(r.error.find("conflicting"), std::string::npos);
}

TEST(user_params, users_with_dashes_need_a_users_file) {
  const std::set<std::string, std::less<>> users = {"team-a", "team-a-eu", "bob"};
  const auto is_user = [&users](std::string_view u) { return users.count(u) > 0; };

  struct row {
    std::string username;
    std::string user;
    std::string country;
  };
  const std::vector<row> rows = {
      {"team-a-country-us", "team-a", "us"},
      {"team-a-eu-country-de", "team-a-eu", "de"},
      {"team-a-eu", "team-a-eu", ""},
      {"bob-country-fr", "bob", "fr"},
      // No prefix is a user: the first part is the user, and the credential check fails later.
      {"carol-country-us", "carol", "us"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.username);
    const auto p = parse_credentials(r.username, "pw", is_user);
    ASSERT_TRUE(p.params.has_value()) << p.error;
    EXPECT_EQ(p.params->user, r.user);
    EXPECT_EQ(p.params->country, r.country);
  }
  // Without a users file the user ends at the first '-'.
  const auto p = parse_credentials("team-a-country-us", "pw");
  EXPECT_FALSE(p.params.has_value());
  EXPECT_EQ(p.error, "unknown option 'a' in username");
}

}  // namespace
}  // namespace exitpool::proto
