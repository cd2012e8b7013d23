#pragma once
// TOML config files: every long option of a subcommand can be set as a key of
// the same name (`pool = "pool.txt"`, `threads = 4`, `allow-open = true`), at
// the top level or in a table named after the subcommand (`[serve]`).
// Command-line options win over the file. A repeatable option described per item (`--pool`
// and its `--pool-*` options) may also be an array of tables: `[[pool]] source = "..."
// tags = "type=isp"` (cli/pool_options.hpp); a --pool on the command line replaces the file's.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace exitpool::cli {

// Turns the file into command-line arguments for `cmd` ("--threads", "4", ...).
// Throws std::runtime_error naming FILE:LINE:COLUMN for TOML syntax errors and
// FILE:LINE for unknown keys or values of the wrong kind.
std::vector<std::string> config_arguments(const std::string& path, const CLI::App& cmd);

// Rewrites argv-style `args` (without the program name): when the subcommand's
// arguments hold `--config FILE` (or `--config=FILE`), the file's arguments are
// inserted right after the subcommand name, so that later command-line values win.
void expand_config(std::vector<std::string>& args, const CLI::App& app);

}  // namespace exitpool::cli
