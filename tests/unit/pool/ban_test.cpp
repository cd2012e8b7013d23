#include "pool/ban.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "pool/pool.hpp"
#include "pool/sticky.hpp"

namespace exitpool::pool {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + 1000h;

proto::exit_spec spec(std::string id) {
  proto::exit_spec s;
  s.scheme = proto::exit_scheme::http;
  s.host = "10.0.0.1";
  s.port = 8080;
  s.id = std::move(id);
  return s;
}

TEST(BanTable, OnlyThatExitAndHost) {
  exit a(spec("a"), 0);
  exit b(spec("b"), 1);
  ban_table bans;
  EXPECT_FALSE(bans.banned(a, "x.com", t0));
  bans.ban(a, "x.com", t0 + 60s);
  EXPECT_TRUE(bans.banned(a, "x.com", t0));
  EXPECT_FALSE(bans.banned(a, "y.com", t0));
  EXPECT_FALSE(bans.banned(b, "x.com", t0));
  EXPECT_EQ(bans.banned_until(a, "x.com", t0), t0 + 60s);
  EXPECT_EQ(bans.banned_until(a, "y.com", t0), std::nullopt);
}

TEST(BanTable, Expires) {
  exit a(spec("a"), 0);
  ban_table bans;
  bans.ban(a, "x.com", t0 + 60s);
  EXPECT_TRUE(bans.banned(a, "x.com", t0 + 59999ms));
  EXPECT_FALSE(bans.banned(a, "x.com", t0 + 60s));
  EXPECT_EQ(bans.count(t0), 1u);
  EXPECT_EQ(bans.count(t0 + 60s), 0u);
  EXPECT_EQ(bans.size(), 1u);
  EXPECT_EQ(bans.sweep(t0 + 60s), 0u);
  EXPECT_EQ(bans.size(), 0u);
}

TEST(BanTable, LaterEndWinsAndUnban) {
  exit a(spec("a"), 0);
  ban_table bans;
  bans.ban(a, "x.com", t0 + 60s);
  bans.ban(a, "x.com", t0 + 10s);  // shorter: keeps the longer ban
  EXPECT_EQ(bans.banned_until(a, "x.com", t0), t0 + 60s);
  bans.ban(a, "x.com", t0 + 120s);
  EXPECT_EQ(bans.banned_until(a, "x.com", t0), t0 + 120s);
  EXPECT_TRUE(bans.unban(a, "x.com"));
  EXPECT_FALSE(bans.unban(a, "x.com"));
  EXPECT_FALSE(bans.banned(a, "x.com", t0));
}

TEST(BanTable, BansOfAnExit) {
  exit a(spec("a"), 0);
  exit b(spec("b"), 1);
  ban_table bans;
  bans.ban(a, "z.com", t0 + 30s);
  bans.ban(a, "x.com", t0 + 60s);
  bans.ban(a, "old.com", t0 + 1s);
  bans.ban(b, "x.com", t0 + 60s);
  const auto index = bans.bans_by_exit(t0 + 2s);
  ASSERT_EQ(index.size(), 2u);  // a and b; a's expired ban on old.com is left out
  const auto& list = index.at(a.id_hash());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0], (std::pair<std::string, time_point>{"x.com", t0 + 60s}));
  EXPECT_EQ(list[1], (std::pair<std::string, time_point>{"z.com", t0 + 30s}));
  EXPECT_EQ(index.at(b.id_hash()).size(), 1u);
  EXPECT_EQ(bans.count(t0 + 2s), 3u);
}

TEST(BanTable, BatchLookup) {
  exit a(spec("a"), 0);
  exit b(spec("b"), 1);
  ban_table bans;
  bans.ban(b, "x.com", t0 + 5s);
  const std::uint64_t hashes[] = {a.id_hash(), b.id_hash()};
  time_point out[2];
  bans.banned_until_many("x.com", hash64("x.com"), hashes, t0, out);
  EXPECT_EQ(out[0], time_point::min());
  EXPECT_EQ(out[1], t0 + 5s);
}

TEST(BanTable, SizeIsBoundedExpiredAndSoonestGoFirst) {
  ban_table bans(64 * 8);  // 8 per stripe
  std::vector<std::unique_ptr<exit>> exits;
  for (int i = 0; i < 5000; ++i) {
    exits.push_back(std::make_unique<exit>(spec("e" + std::to_string(i)), i));
    bans.ban(*exits.back(), "host" + std::to_string(i % 997), t0 + std::chrono::seconds(1 + i));
  }
  EXPECT_LE(bans.size(), 64u * 8u);
  // The last ban (the longest) survives.
  EXPECT_TRUE(bans.banned(*exits.back(), "host" + std::to_string(4999 % 997), t0));
}

// ---- Retry-After ------------------------------------------------------------------------------

// Sun, 06 Nov 1994 08:49:37 GMT, minus 100 s.
const auto sys_now = std::chrono::sys_days{std::chrono::year{1994} / 11 / 6} + 8h + 49min + 37s - 100s;

TEST(RetryAfter, DeltaSeconds) {
  struct {
    const char* value;
    std::optional<std::chrono::seconds> want;
  } cases[] = {
      {"120", 120s},
      {"0", 0s},
      {"  7\t", 7s},
      {"3600", 3600s},
      {"3601", 3600s},                     // capped
      {"99999999999999999999999", 3600s},  // overflow: capped, not rejected
      {"", std::nullopt},
      {"-5", std::nullopt},
      {"1.5", std::nullopt},
      {"12abc", std::nullopt},
      {"+5", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_retry_after(c.value, sys_now), c.want) << c.value;
  }
  EXPECT_EQ(parse_retry_after("600", sys_now, 300s), 300s);
}

TEST(RetryAfter, HttpDate) {
  struct {
    const char* value;
    std::optional<std::chrono::seconds> want;
  } cases[] = {
      {"Sun, 06 Nov 1994 08:49:37 GMT", 100s},  // IMF-fixdate
      {"Sun, 06 Nov 1994 08:51:17 GMT", 200s},
      {"Sunday, 06-Nov-94 08:49:37 GMT", 100s},  // obsolete RFC 850
      {"Sun Nov  6 08:49:37 1994", 100s},        // obsolete asctime
      {"Sun, 06 Nov 1994 08:00:00 GMT", 0s},     // in the past
      {"Mon, 07 Nov 1994 08:49:37 GMT", 3600s},  // a day ahead: capped
      {"Sun, 06 Nov 1994 08:49:37 UTC", std::nullopt},
      {"Sun, 6 Nov 1994 08:49:37 GMT", std::nullopt},
      {"Foo, 06 Nov 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 06 Now 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 31 Feb 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 06 Nov 1994 25:49:37 GMT", std::nullopt},
      {"Sun, 06 Nov 1994 08:49:37 GMT trailing", std::nullopt},
      {"tomorrow", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_retry_after(c.value, std::chrono::system_clock::time_point(sys_now)), c.want) << c.value;
  }
}

}  // namespace
}  // namespace exitpool::pool
