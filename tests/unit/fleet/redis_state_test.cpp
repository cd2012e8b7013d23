#include "fleet/redis_state.hpp"

#include <gtest/gtest.h>

namespace exitpool::fleet {
namespace {

TEST(FleetEvent, Ban) {
  auto ev = parse_event("b\ngw1\n1500\nexit-1\nexample.com");
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, fleet_event::kind::ban);
  EXPECT_EQ(ev->origin, "gw1");
  EXPECT_EQ(ev->remaining_ms, 1500);
  EXPECT_EQ(ev->exit_id, "exit-1");
  EXPECT_EQ(ev->host, "example.com");
}

TEST(FleetEvent, Ejection) {
  auto ev = parse_event("e\ngw1\n10000\nexit-2");
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, fleet_event::kind::ejection);
  EXPECT_EQ(ev->exit_id, "exit-2");
  EXPECT_EQ(ev->remaining_ms, 10000);
}

TEST(FleetEvent, AnchorKeepsAnyBytesInTheSessionKey) {
  auto ev = parse_event("a\ngw\n3\nff01\n60000\nuser-1\nwith newline");
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, fleet_event::kind::anchor);
  EXPECT_EQ(ev->generation, 3U);
  EXPECT_EQ(ev->anchor, 0xff01U);
  EXPECT_EQ(ev->remaining_ms, 60000);
  EXPECT_EQ(ev->session, "user-1\nwith newline");
}

TEST(FleetEvent, JoinAndLeave) {
  auto j = parse_event("j\nhost:1:127.0.0.1:8080");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->type, fleet_event::kind::join);
  EXPECT_EQ(j->origin, "host:1:127.0.0.1:8080");
  auto l = parse_event("l\ngw2");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->type, fleet_event::kind::leave);
  EXPECT_EQ(l->origin, "gw2");
  EXPECT_FALSE(parse_event("j\n").has_value());
  EXPECT_FALSE(parse_event("l\ngw\nmore").has_value());
}

TEST(FleetEvent, Malformed) {
  for (const char* bad : {"", "b", "x\ngw\n1\ne", "b\ngw\n1\nexit", "b\ngw\nsoon\nexit\nhost", "b\n\n1\nexit\nhost",
                          "e\ngw\n1\n", "a\ngw\n1\nzz\n5\nkey", "a\ngw\n1\nff\n5\n"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_event(bad).has_value());
  }
  EXPECT_FALSE(parse_event("b\ngw\n1\nexit\n" + std::string(254, 'h')).has_value());  // no such host name
}

TEST(FleetGrant, BatchIsAHundredMillisecondsOfTokens) {
  EXPECT_EQ(grant_batch(5), 1);
  EXPECT_EQ(grant_batch(0.5), 1);
  EXPECT_EQ(grant_batch(100), 10);
  EXPECT_EQ(grant_batch(1e6), 4096);  // 0.4 % of the rate per gateway at most
}

}  // namespace
}  // namespace exitpool::fleet
