#pragma once
// Time options with units: "250ms", "30s", "5m", "1h", or a bare number of seconds ("1.5").
// The options still hold seconds; a CLI11 transform rewrites the text before it is parsed, so
// flags and TOML keys (config_file passes their text through) accept the same forms.
// Call accept_durations once per subcommand, after its options are added (startup, main thread).

#include <CLI/CLI.hpp>
#include <initializer_list>
#include <optional>
#include <string_view>

namespace exitpool::ops {

// Seconds for "N", "Nms", "Ns", "Nm", "Nh" (N: digits with an optional fraction, an optional leading
// '-' that the option's own range check then refuses); nullopt otherwise.
std::optional<double> parse_duration_seconds(std::string_view text);

// Each named option of `cmd` ("--dial-timeout") accepts a duration and shows DURATION in --help.
// Throws CLI::OptionNotFound for a name `cmd` does not have (a typo fails every run, so tests see it).
void accept_durations(CLI::App* cmd, std::initializer_list<std::string_view> names);

}  // namespace exitpool::ops
