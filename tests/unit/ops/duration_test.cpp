#include "ops/duration.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace exitpool::ops {

TEST(duration, parses_units_and_bare_seconds) {
  struct tc {
    std::string text;
    std::optional<double> seconds;
  };
  for (const auto& c : std::vector<tc>{
           {"30", 30},
           {"1.5", 1.5},
           {"0", 0},
           {"250ms", 0.25},
           {"30s", 30},
           {"5m", 300},
           {"1h", 3600},
           {"0.5h", 1800},
           {"", std::nullopt},
           {"s", std::nullopt},
           {"-1", -1},
           {"-2m", -120},
           {"--1", std::nullopt},
           {"1.", std::nullopt},
           {".5", std::nullopt},
           {"1..2", std::nullopt},
           {"5 m", std::nullopt},
           {"5min", std::nullopt},
           {"5M", std::nullopt},
           {"1e3", std::nullopt},
           {"10d", std::nullopt},
       }) {
    EXPECT_EQ(parse_duration_seconds(c.text), c.seconds) << c.text;
  }
}

TEST(duration, options_take_units_and_still_hold_seconds) {
  CLI::App app;
  double timeout = 10;
  int ttl = 1;
  app.add_option("--timeout", timeout);
  app.add_option("--ttl", ttl);
  accept_durations(&app, {"--timeout", "--ttl"});
  app.parse("--timeout 250ms --ttl 2m", false);
  EXPECT_DOUBLE_EQ(timeout, 0.25);
  EXPECT_EQ(ttl, 120);
  app.parse("--timeout 7 --ttl 3", false);
  EXPECT_DOUBLE_EQ(timeout, 7);
  EXPECT_EQ(ttl, 3);
  EXPECT_THROW(app.parse("--timeout 5min", false), CLI::ValidationError);
  EXPECT_THROW(app.parse("--ttl 250ms", false), CLI::ConversionError);  // not a whole number of seconds
  EXPECT_EQ(app.get_option("--timeout")->get_type_name(), "DURATION");
}

TEST(duration, unknown_option_name_throws) {
  CLI::App app;
  EXPECT_THROW(accept_durations(&app, {"--nope"}), CLI::OptionNotFound);
}

}  // namespace exitpool::ops
