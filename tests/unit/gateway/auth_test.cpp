#include "gateway/auth.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "proto/base64.hpp"
#include "proto/socks5.hpp"

namespace exitpool::gateway {
namespace {

proto::request_head head_with(std::vector<proto::header> headers) {
  proto::request_head h;
  h.method = "GET";
  h.target = "http://example.com/";
  h.headers = std::move(headers);
  return h;
}

std::string basic(std::string_view user_pass) {
  return "Basic " + proto::base64_encode(user_pass);
}

TEST(BasicCredentials, Table) {
  struct tc {
    std::string name;
    std::optional<std::string> value;  // Proxy-Authorization; nullopt: no header
    std::optional<credentials> want;
  };
  const std::string big_user(8000, 'u');
  const std::vector<tc> cases = {
      {"absent", std::nullopt, std::nullopt},
      {"user and password", basic("alice:secret"), credentials{"alice", "secret"}},
      {"scheme is case-insensitive", "bAsIc " + proto::base64_encode("alice:pw"), credentials{"alice", "pw"}},
      {"spaces before the token", "Basic    " + proto::base64_encode("alice:pw"), credentials{"alice", "pw"}},
      {"colon in the password", basic("alice:a:b:c"), credentials{"alice", "a:b:c"}},
      {"empty password", basic("alice:"), credentials{"alice", ""}},
      {"no colon: all user", basic("alice"), credentials{"alice", ""}},
      {"options in the username", basic("alice-country-us:pw"), credentials{"alice-country-us", "pw"}},
      // Present but unusable: empty credentials (refused later), never "no credentials".
      {"other scheme", "Bearer abc", credentials{}},
      {"scheme only", "Basic", credentials{}},
      {"malformed base64", "Basic !!!notbase64", credentials{}},
      {"bad padding", "Basic YWxpY2U6cHc", credentials{}},
      {"empty value", "", credentials{}},
      // Nothing cuts a long value short (the head parser bounds the line at 16 KiB).
      {"oversize", basic(big_user + ":pw"), credentials{big_user, "pw"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<proto::header> headers = {{"Host", "example.com"}};
    if (c.value) {
      headers.push_back({"Proxy-Authorization", *c.value});
    }
    EXPECT_EQ(basic_credentials(head_with(headers)), c.want);
  }
}

TEST(BasicCredentials, HeaderNameIsCaseInsensitive) {
  EXPECT_EQ(basic_credentials(head_with({{"proxy-authorization", basic("a:b")}})), (credentials{"a", "b"}));
  // Authorization (to the origin) is not the proxy's.
  EXPECT_EQ(basic_credentials(head_with({{"Authorization", basic("a:b")}})), std::nullopt);
}

struct auth_case {
  std::string name;
  std::optional<credentials> creds;
  bool admitted;
  std::string error_has;  // when refused
  proto::route_params want{};
};

void check(const user_table& users, const std::vector<auth_case>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = authenticate(users, c.creds);
    ASSERT_EQ(r.params.has_value(), c.admitted) << r.error;
    if (!c.admitted) {
      EXPECT_NE(r.error.find(c.error_has), std::string::npos) << r.error;
      continue;
    }
    EXPECT_TRUE(r.error.empty());
    EXPECT_EQ(r.params->user, c.want.user);
    EXPECT_EQ(r.params->password, c.want.password);
    EXPECT_EQ(r.params->country, c.want.country);
    EXPECT_EQ(r.params->city, c.want.city);
    EXPECT_EQ(r.params->session, c.want.session);
    EXPECT_EQ(r.params->session_minutes, c.want.session_minutes);
  }
}

TEST(Authenticate, WithoutUsersAnyoneIsLetIn) {
  check({}, {
                {"no credentials: default options", std::nullopt, true, "", {}},
                {"credentials carry options",
                 credentials{"alice-country-US-session-s1", "x"},
                 true,
                 "",
                 {.user = "alice", .password = "x", .country = "us", .session = "s1"}},
                // An unusable Proxy-Authorization is refused even on an open gateway.
                {"empty credentials", credentials{}, false, "empty user name"},
                {"options in the password",
                 credentials{"bob", "pw_city-Paris_sesstime-30"},
                 true,
                 "",
                 {.user = "bob", .password = "pw", .city = "paris", .session_minutes = 30}},
                {"unknown option", credentials{"alice-colour-red", "x"}, false, "unknown option"},
                {"bad session lifetime", credentials{"alice-sesstime-0", "x"}, false, "sesstime"},
            });
}

TEST(Authenticate, WithUsers) {
  const user_table users = {{"alice", "secret"}, {"bob-smith", "pw"}};
  check(users,
        {
            {"no credentials", std::nullopt, false, "proxy authentication required"},
            {"right password", credentials{"alice", "secret"}, true, "", {.user = "alice", .password = "secret"}},
            {"wrong password", credentials{"alice", "secrex"}, false, "bad username or password"},
            {"password prefix", credentials{"alice", "secre"}, false, "bad username or password"},
            {"unknown user", credentials{"carol", "secret"}, false, "bad username or password"},
            {"unusable header", credentials{}, false, "empty user name"},
            {"options on both fields",
             credentials{"alice-country-de", "secret_session-s1"},
             true,
             "",
             {.user = "alice", .password = "secret", .country = "de", .session = "s1"}},
            // A user whose name has '-': the longest known prefix is the user.
            {"user with a dash",
             credentials{"bob-smith-country-us", "pw"},
             true,
             "",
             {.user = "bob-smith", .password = "pw", .country = "us"}},
            {"options with a wrong password", credentials{"alice-country-us", "nope"}, false, "bad username"},
        });
}

TEST(ChooseSocks5Method, Table) {
  namespace method = proto::socks5::method;
  struct tc {
    std::vector<std::uint8_t> offered;
    bool users;
    std::uint8_t want;
  };
  for (const auto& [offered, users, want] : {
           tc{{method::no_auth}, false, method::no_auth},
           tc{{method::no_auth}, true, method::none_acceptable},
           // Options travel in the username: username/password wins whenever offered.
           tc{{method::no_auth, method::userpass}, false, method::userpass},
           tc{{method::userpass}, true, method::userpass},
           tc{{0x01}, false, method::none_acceptable},  // GSSAPI only
           tc{{}, false, method::none_acceptable},
       }) {
    EXPECT_EQ(choose_socks5_method(offered, users), want) << "users=" << users << " offered=" << offered.size();
  }
}

}  // namespace
}  // namespace exitpool::gateway
