// libFuzzer target: TOML config files (cli/config_file.hpp). The input is written to a
// temporary file and turned into arguments for a CLI11 `serve` command built like the
// real one (same long options, same kinds), then those arguments are parsed by CLI11.
// Errors must be std::runtime_error naming the file; anything else escaping is a crash.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/config_file.hpp"
#include "fuzz_check.hpp"

namespace {

// The option set of src/cli/serve.cpp (add_serve), bound to throwaway variables.
struct serve_like {
  CLI::App app{"exitpool", "exitpool"};
  CLI::App* cmd = nullptr;
  std::string pool, listen = "127.0.0.1:8080", policy = "round-robin", users, ca_file, log_level = "info";
  int threads = 0, retries = 2, sesstime = 10, ban_retries = 1, eject_after = 3;
  double handshake = 10, dial = 10, idle = 300, drain = 30, queue = 10, ban_time = 300, cooldown = 10,
         max_cooldown = 300, rate = 0, host_rate = 0, burst = 10;
  unsigned concurrency = 0;
  bool watch = false, allow_open = false;
  std::vector<int> ban_statuses{403, 407, 429, 503};
  std::vector<std::string> ban_patterns;

  serve_like() {
    cmd = app.add_subcommand("serve", "serve");
    cmd->add_option("--config", "TOML config file");
    cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    cmd->add_option("--pool", pool);
    cmd->add_option("--listen", listen)->capture_default_str();
    cmd->add_option("--threads", threads)->capture_default_str();
    cmd->add_option("--policy", policy)->capture_default_str();
    cmd->add_option("--users", users);
    cmd->add_option("--retries", retries)->capture_default_str();
    cmd->add_option("--handshake-timeout", handshake)->capture_default_str();
    cmd->add_option("--dial-timeout", dial)->capture_default_str();
    cmd->add_option("--idle-timeout", idle)->capture_default_str();
    cmd->add_option("--sesstime", sesstime)->capture_default_str();
    cmd->add_option("--ca-file", ca_file);
    cmd->add_flag("--watch", watch);
    cmd->add_option("--drain-timeout", drain)->capture_default_str();
    cmd->add_option("--per-exit-rate", rate)->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--per-exit-host-rate", host_rate)->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--per-exit-burst", burst)->capture_default_str();
    cmd->add_option("--per-exit-concurrency", concurrency)->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--queue-timeout", queue)->capture_default_str();
    cmd->add_option("--ban-status", ban_statuses)
        ->capture_default_str()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->delimiter(',');
    cmd->add_option("--ban-pattern", ban_patterns)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->add_option("--ban-time", ban_time)->capture_default_str();
    cmd->add_option("--ban-retries", ban_retries)->capture_default_str();
    cmd->add_option("--eject-after", eject_after)->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--cooldown", cooldown)->capture_default_str();
    cmd->add_option("--max-cooldown", max_cooldown)->capture_default_str();
    cmd->add_flag("--allow-open", allow_open);
    cmd->add_option("--log-level", log_level)->capture_default_str();
  }
};

char config_path[] = "/tmp/exitpool-fuzz-config-XXXXXX";

// One file per process, removed when libFuzzer exits.
std::string temp_path() {
  const int fd = mkstemp(config_path);
  FUZZ_CHECK(fd >= 0);
  close(fd);
  std::atexit([] { unlink(config_path); });
  return config_path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static serve_like serve;
  static const std::string path = temp_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  FUZZ_CHECK(f != nullptr);
  FUZZ_CHECK(std::fwrite(data, 1, size, f) == size);
  std::fclose(f);

  std::vector<std::string> args;
  try {
    args = exitpool::cli::config_arguments(path, *serve.cmd);
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(std::string_view(e.what()).starts_with(path + ":"));
    return 0;
  }
  // Option names come first and are options of the command. (A value need not follow one:
  // `threads = true` yields a bare "--threads", which CLI11 then rejects.)
  if (!args.empty()) {
    FUZZ_CHECK(args.front().starts_with("--"));
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i].starts_with("--") && (i == 0 || serve.cmd->get_option_no_throw(args[i - 1]) == nullptr ||
                                      serve.cmd->get_option_no_throw(args[i - 1])->get_type_size() == 0)) {
      FUZZ_CHECK(args[i] != "--config");
      FUZZ_CHECK(serve.cmd->get_option_no_throw(args[i]) != nullptr);
    }
  }
  // CLI11 takes the arguments last-first, after the subcommand's name.
  args.insert(args.begin(), "serve");
  std::reverse(args.begin(), args.end());
  serve.app.clear();
  try {
    serve.app.parse(args);
  } catch (const CLI::ParseError&) {
    // A wrongly typed value ("threads = 1.5") is the user's error, reported by CLI11.
  }
  return 0;
}
