#include "ops/log_format.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <random>
#include <sstream>
#include <string>

#include "fetch/json_line.hpp"

namespace exitpool::ops {

namespace {

std::string record(std::string_view msg, std::chrono::system_clock::time_point ts = {}) {
  std::string out;
  append_json_record(out, {.ts = ts, .level = "info", .logger = "exitpool", .pid = 7, .tid = 9, .msg = msg});
  return out;
}

}  // namespace

TEST(log_format, parse) {
  EXPECT_EQ(parse_log_format("text"), log_format::text);
  EXPECT_EQ(parse_log_format("json"), log_format::json);
  EXPECT_FALSE(parse_log_format("JSON"));
  EXPECT_FALSE(parse_log_format(""));
}

// The field names and their order are an interface: log shippers index on them.
TEST(log_format, stable_fields) {
  const auto ts =
      std::chrono::system_clock::time_point(std::chrono::seconds(1764581400) + std::chrono::microseconds(123456));
  EXPECT_EQ(record("pool reloaded", ts),
            R"({"ts":"2025-12-01T09:30:00.123456Z","level":"info","logger":"exitpool","pid":7,"tid":9,)"
            R"("msg":"pool reloaded"})");
}

TEST(log_format, escapes_what_peers_put_in_messages) {
  struct tc {
    std::string msg, json;
  };
  for (const auto& c : std::vector<tc>{
           {R"(bad "host" \ here)", R"("bad \"host\" \\ here")"},
           {"line\nbreak\r\ttab", R"("line\nbreak\r\ttab")"},
           {std::string("nul\0bell\x07"
                        "esc\x1b",
                        13),
            R"("nul\u0000bell\u0007esc\u001b")"},
           {"del\x7f", "\"del\x7f\""},  // DEL is legal JSON
           {"latin1 \xe9t\xe9", R"("latin1 \u00e9t\u00e9")"},
           {"utf8 \xc3\xa9t\xc3\xa9", "\"utf8 \xc3\xa9t\xc3\xa9\""},
       }) {
    const auto line = record(c.msg);
    EXPECT_TRUE(line.ends_with(",\"msg\":" + c.json + "}")) << line;
    EXPECT_TRUE(fetch::complete_object(line)) << line;
  }
}

// Whatever bytes a message holds, the line is one JSON object with no raw control bytes
// and only valid UTF-8.
TEST(log_format, random_bytes_stay_one_valid_line) {
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::string msg(rng() % 64, '\0');
    for (auto& ch : msg) {
      ch = static_cast<char>(rng());
    }
    const auto line = record(msg);
    ASSERT_TRUE(fetch::complete_object(line)) << line;
    ASSERT_TRUE(fetch::valid_utf8(line)) << line;
    for (char ch : line) {
      ASSERT_GE(static_cast<unsigned char>(ch), 0x20) << line;
    }
  }
}

TEST(log_format, timestamps_before_1970_floor) {
  const auto ts = std::chrono::system_clock::time_point(-std::chrono::microseconds(1));
  EXPECT_NE(record("x", ts).find(R"("ts":"1969-12-31T23:59:59.999999Z")"), std::string::npos);
}

TEST(log_format, spdlog_formatter_writes_one_line_per_record) {
  std::ostringstream os;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(os);
  sink->set_formatter(make_json_formatter());
  spdlog::logger logger("exitpool", sink);
  logger.warn("exit {} \"banned\"\nfor {}", "e1", "example.com");
  logger.error("second");
  const std::string text = os.str();
  ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  const auto first = text.substr(0, text.find('\n'));
  EXPECT_TRUE(fetch::complete_object(first)) << first;
  EXPECT_NE(first.find(R"("level":"warning")"), std::string::npos) << first;
  EXPECT_NE(first.find(R"("msg":"exit e1 \"banned\"\nfor example.com")"), std::string::npos) << first;
}

}  // namespace exitpool::ops
