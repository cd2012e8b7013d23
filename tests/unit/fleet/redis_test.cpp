#include "fleet/redis.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace exitpool::fleet {
namespace {

TEST(RedisUrl, ValidForms) {
  struct row {
    const char* text;
    const char* host;
    int port;
    int db;
    const char* user;
    const char* password;
  };
  const row rows[] = {
      {"redis://127.0.0.1", "127.0.0.1", 6379, 0, "", ""},
      {"redis://localhost:7000", "localhost", 7000, 0, "", ""},
      {"redis://h:7000/3", "h", 7000, 3, "", ""},
      {"redis://h/", "h", 6379, 0, "", ""},
      {"redis://:secret@h:1", "h", 1, 0, "", "secret"},
      {"redis://secret@h", "h", 6379, 0, "", "secret"},
      {"redis://alice:s:e@c@h:2/15", "h", 2, 15, "alice", "s:e@c"},
      {"redis://[::1]:6380/1", "::1", 6380, 1, "", ""},
      {"redis://[::1]", "::1", 6379, 0, "", ""},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.text);
    auto u = parse_redis_url(r.text);
    EXPECT_EQ(u.host, r.host);
    EXPECT_EQ(u.port, r.port);
    EXPECT_EQ(u.db, r.db);
    EXPECT_EQ(u.user, r.user);
    EXPECT_EQ(u.password, r.password);
  }
}

TEST(RedisUrl, RejectsWithAReason) {
  struct row {
    const char* text;
    const char* says;
  };
  const row rows[] = {
      {"127.0.0.1:6379", "expected redis://"},
      {"rediss://h", "TLS"},
      {"redis://", "no host"},
      {"redis://h:", "port ''"},
      {"redis://h:0", "port 0"},
      {"redis://h:65536", "port '65536'"},
      {"redis://h:x1", "port 'x1'"},
      {"redis://h/x", "database 'x'"},
      {"redis://[::1", "']'"},
      {"redis://[::1]x", "':PORT'"},
      {"redis://:@h", "empty password"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.text);
    try {
      parse_redis_url(r.text);
      ADD_FAILURE() << "accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(r.says), std::string::npos) << e.what();
    }
  }
}

TEST(RedisUrl, RedactedLeavesOutTheCredentials) {
  auto u = parse_redis_url("redis://alice:hunter2@h:7/2");
  EXPECT_EQ(redacted(u), "redis://h:7/2");
  EXPECT_EQ(redacted(parse_redis_url("redis://:pw@[::1]")), "redis://[::1]:6379/0");
}

TEST(RedisFormat, BinarySafeArguments) {
  std::vector<std::string> args{"SET", "k", std::string("a\0b\r\n", 5)};
  EXPECT_EQ(format_command(args), std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0b\r\n\r\n", 31));
  std::vector<std::string> empty_arg{"ECHO", ""};
  EXPECT_EQ(format_command(empty_arg), "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
}

TEST(RedisReader, RepliesInOrderAcrossPartialFeeds) {
  reply_reader r;
  const std::string wire = "+OK\r\n:42\r\n$5\r\nhe\r\no\r\n$-1\r\n-ERR bad\r\n*2\r\n:1\r\n*1\r\n+x\r\n";
  std::vector<reply> got;
  for (char c : wire) {  // one byte at a time: the worst a socket can do
    r.feed(std::string_view(&c, 1));
    while (auto rep = r.next()) {
      got.push_back(std::move(*rep));
    }
  }
  ASSERT_FALSE(r.failed());
  ASSERT_EQ(got.size(), 6U);
  EXPECT_EQ(got[0].type, reply::kind::status);
  EXPECT_EQ(got[0].str, "OK");
  EXPECT_EQ(got[1].as_int(), 42);
  EXPECT_EQ(got[2].str, "he\r\no");
  EXPECT_TRUE(got[3].is_nil());
  EXPECT_TRUE(got[4].is_error());
  EXPECT_EQ(got[4].str, "ERR bad");
  ASSERT_EQ(got[5].elements.size(), 2U);
  EXPECT_EQ(got[5].elements[0].as_int(), 1);
  EXPECT_EQ(got[5].elements[1].elements.at(0).str, "x");
}

TEST(RedisReader, ProtocolErrorIsSticky) {
  reply_reader r;
  r.feed("?what\r\n");
  EXPECT_FALSE(r.next().has_value());
  EXPECT_TRUE(r.failed());
  r.feed("+OK\r\n");
  EXPECT_FALSE(r.next().has_value());
}

TEST(RedisReply, AsInt) {
  reply s{reply::kind::string, "-17", 0, {}};
  EXPECT_EQ(s.as_int(), -17);
  reply bad{reply::kind::string, "17x", 0, {}};
  EXPECT_EQ(bad.as_int(5), 5);
  reply nil;
  EXPECT_EQ(nil.as_int(3), 3);
}

}  // namespace
}  // namespace exitpool::fleet
