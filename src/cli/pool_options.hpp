#pragma once
// `--pool SOURCE` (repeatable: a file or an http(s):// URL) and the options that describe the
// source named by the --pool before them, for serve and check (and their TOML keys: `pool`, or
// `[[pool]]` tables, cli/config_file.hpp):
//   --pool-tags 'type=isp country=us'   tags for the lines that have none of their own
//   --pool-scheme socks5                scheme of bare host:port[:user:pass] lines
//   --pool-auth-file F | --pool-auth-env V   user:password for lines without credentials
//   --pool-key-file F | --pool-key-env V     the source's API key: in place of {key} in the URL,
//   --pool-key-header NAME                   or sent as this header
//   --pool-refresh 60s  --pool-timeout 10s  --pool-allow-empty
// Startup, main thread.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "pool/source.hpp"

namespace exitpool::cli {

// Adds --pool (described by `pool_help`) and the per-source options to `cmd`.
void add_pool_options(CLI::App* cmd, const std::string& pool_help);

// The sources given to `cmd` (after its parse), in order, each with the per-source options
// that followed it, secrets read from their files and variables, each checked
// (pool::check_source). Throws std::runtime_error naming the option and the source.
std::vector<pool::source_spec> pool_sources_of(const CLI::App& cmd);

// The first line of `path` (without its line end): a password or key kept in a file. Throws
// std::runtime_error("OPTION PATH: why") when it cannot be read or the line is empty.
std::string read_secret_file(const std::string& option, const std::string& path);

}  // namespace exitpool::cli
