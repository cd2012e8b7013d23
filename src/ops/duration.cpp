#include "ops/duration.hpp"

#include <fmt/format.h>

#include <charconv>
#include <string>

namespace exitpool::ops {

std::optional<double> parse_duration_seconds(std::string_view text) {
  // A sign passes through: the option's own range check names the option ("--check-interval: ...").
  const bool negative = text.starts_with('-');
  if (negative) {
    text.remove_prefix(1);
  }
  std::size_t digits = 0;
  bool dot = false;
  while (digits < text.size() && ((text[digits] >= '0' && text[digits] <= '9') || (text[digits] == '.' && !dot))) {
    dot = dot || text[digits] == '.';
    ++digits;
  }
  const auto number = text.substr(0, digits);
  if (number.empty() || number == "." || number.front() == '.' || number.back() == '.') {
    return std::nullopt;
  }
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc{} || end != number.data() + number.size()) {
    return std::nullopt;
  }
  if (negative) {
    value = -value;
  }
  const auto unit = text.substr(digits);
  if (unit.empty() || unit == "s") {
    return value;
  }
  if (unit == "ms") {
    return value / 1000;
  }
  if (unit == "m") {
    return value * 60;
  }
  if (unit == "h") {
    return value * 3600;
  }
  return std::nullopt;
}

void accept_durations(CLI::App* cmd, std::initializer_list<std::string_view> names) {
  CLI::Validator to_seconds(
      [](std::string& text) {
        const auto seconds = parse_duration_seconds(text);
        if (!seconds) {
          return std::string("expected seconds or a duration with a unit: 250ms, 30s, 5m, 1h");
        }
        text = fmt::format("{}", *seconds);
        return std::string();
      },
      "", "duration");
  for (auto name : names) {
    cmd->get_option(std::string(name))->transform(to_seconds)->type_name("DURATION");
  }
}

}  // namespace exitpool::ops
