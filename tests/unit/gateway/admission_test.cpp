#include "gateway/admission.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace exitpool::gateway {
namespace {

user_counters counters_for(std::initializer_list<std::string> users) {
  user_counters c;
  for (const auto& u : users) {
    c.emplace(u, std::make_unique<std::atomic<int>>(0));
  }
  return c;
}

int count(const user_counters& c, const std::string& user) {
  return c.at(user)->load();
}

TEST(UserSlot, CountsOncePerConnectionAndGivesBack) {
  const auto counters = counters_for({"alice", "bob"});
  {
    user_slot a;
    EXPECT_EQ(a.claim(counters, "alice", 2), "");
    EXPECT_TRUE(a.claimed());
    EXPECT_EQ(count(counters, "alice"), 1);
    // A second request on the same connection is not counted again (even as another user).
    EXPECT_EQ(a.claim(counters, "alice", 2), "");
    EXPECT_EQ(a.claim(counters, "bob", 2), "");
    EXPECT_EQ(count(counters, "alice"), 1);
    EXPECT_EQ(count(counters, "bob"), 0);
    user_slot b;
    EXPECT_EQ(b.claim(counters, "alice", 2), "");
    EXPECT_EQ(count(counters, "alice"), 2);
    user_slot c;
    EXPECT_EQ(c.claim(counters, "alice", 2), "too many connections for user alice (limit 2)");
    // Refused, yet counted until the connection goes (its answer is still sent on it).
    EXPECT_TRUE(c.claimed());
    EXPECT_EQ(count(counters, "alice"), 3);
    c.release();
    c.release();  // idempotent
    EXPECT_EQ(count(counters, "alice"), 2);
  }
  EXPECT_EQ(count(counters, "alice"), 0);
}

TEST(UserSlot, NoLimitOrUnknownUserCountsNothing) {
  const auto counters = counters_for({"alice"});
  user_slot a;
  EXPECT_EQ(a.claim(counters, "alice", 0), "");
  EXPECT_FALSE(a.claimed());
  EXPECT_EQ(count(counters, "alice"), 0);
  user_slot b;
  EXPECT_EQ(b.claim(counters, "carol", 1), "");
  EXPECT_FALSE(b.claimed());
}

TEST(Admit, OnePreludeForEveryFront) {
  const user_table users = {{"alice", "secret"}};
  const auto counters = counters_for({"alice"});
  const admission_rules rules{users, counters, 1};
  struct tc {
    std::string name;
    std::optional<credentials> creds;
    pool::failure refused;  // none: admitted
    int status;
  };
  user_slot first;
  {
    auto a = admit(rules, credentials{"alice-country-us", "secret"}, first);
    ASSERT_TRUE(a.params);
    EXPECT_FALSE(a.refusal);
    EXPECT_EQ(a.params->country, "us");
    EXPECT_EQ(count(counters, "alice"), 1);
  }
  for (const auto& c : {
           tc{"no credentials", std::nullopt, pool::failure::auth_failed, 407},
           tc{"bad password", credentials{"alice", "nope"}, pool::failure::auth_failed, 407},
           tc{"bad option", credentials{"alice-colour-red", "secret"}, pool::failure::auth_failed, 407},
           tc{"user at its limit", credentials{"alice", "secret"}, pool::failure::client_limit, 429},
       }) {
    SCOPED_TRACE(c.name);
    user_slot slot;
    auto a = admit(rules, c.creds, slot);
    EXPECT_FALSE(a.params);
    EXPECT_EQ(a.refusal.kind, c.refused);
    EXPECT_EQ(a.refusal.status, c.status);
    EXPECT_FALSE(a.refusal.message.empty());
    // A refused authentication takes no slot.
    EXPECT_EQ(slot.claimed(), c.refused == pool::failure::client_limit);
  }
  EXPECT_EQ(count(counters, "alice"), 1);
}

TEST(Admit, OpenGatewayTakesNoSlot) {
  const user_table users;
  const user_counters counters;
  user_slot slot;
  auto a = admit({users, counters, 5}, std::nullopt, slot);
  ASSERT_TRUE(a.params);
  EXPECT_FALSE(slot.claimed());
}

}  // namespace
}  // namespace exitpool::gateway

namespace exitpool::gateway {
namespace {

TEST(Admit, AllowlistInsteadOfPasswords) {
  const user_table users = {{"alice", "secret"}};
  const user_table no_users;
  const auto counters = counters_for({"alice"});
  const user_counters none;
  struct tc {
    std::string name;
    bool with_users;
    bool allowlisted;
    std::optional<credentials> creds;
    bool admitted;
    bool creds_required;
    bool refused_by_address;
  };
  for (const auto& c : {
           tc{"on the list, no credentials", true, true, std::nullopt, true, false, false},
           tc{"on the list, bad password still refused", true, true, credentials{"alice", "nope"}, false, false, false},
           tc{"off the list, users: credentials as usual", true, false, credentials{"alice", "secret"}, true, true,
              false},
           tc{"off the list, users, none sent", true, false, std::nullopt, false, true, false},
           tc{"off the list, no users: refused", false, false, std::nullopt, false, false, true},
           tc{"off the list, no users, credentials do not help", false, false, credentials{"x", "y"}, false, false,
              true},
           tc{"on the list, no users", false, true, std::nullopt, true, false, false},
       }) {
    SCOPED_TRACE(c.name);
    admission_rules rules{c.with_users ? users : no_users, c.with_users ? counters : none, 0};
    rules.allowlist = true;
    rules.allowlisted = c.allowlisted;
    EXPECT_EQ(credentials_required(rules), c.creds_required);
    EXPECT_EQ(refused_by_address(rules), c.refused_by_address);
    user_slot slot;
    auto a = admit(rules, c.creds, slot);
    EXPECT_EQ(a.params.has_value(), c.admitted);
    if (!c.admitted) {
      EXPECT_EQ(a.refusal.kind, pool::failure::auth_failed);
    }
  }
}

TEST(Admit, PortOptionsReplaceTheCredentialsOptions) {
  const user_table users = {{"alice", "secret"}};
  const auto counters = counters_for({"alice"});
  proto::route_params port;
  port.country = "us";
  port.session = "port:10001";
  admission_rules rules{users, counters, 0};
  rules.port_options = &port;
  user_slot slot;
  auto a = admit(rules, credentials{"alice-country-nl-session-x", "secret"}, slot);
  ASSERT_TRUE(a.params);
  EXPECT_EQ(a.params->user, "alice");
  EXPECT_EQ(a.params->country, "us");
  EXPECT_EQ(a.params->session, "port:10001");
  // Still authenticated: the port is no way around the password.
  user_slot other;
  EXPECT_FALSE(admit(rules, std::nullopt, other).params);
  rules.allowlist = rules.allowlisted = true;
  auto b = admit(rules, std::nullopt, other);
  ASSERT_TRUE(b.params);
  EXPECT_EQ(b.params->user, "");
  EXPECT_EQ(b.params->session, "port:10001");
}

}  // namespace
}  // namespace exitpool::gateway
