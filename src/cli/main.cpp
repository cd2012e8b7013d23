// exitpool: one binary, subcommands. Thin: everything else lives in the libraries.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "cli/bench.hpp"
#include "cli/check.hpp"
#include "cli/config_file.hpp"
#include "cli/crawl.hpp"
#include "cli/fetch.hpp"
#include "cli/fleet.hpp"
#include "cli/serve.hpp"
#include "ops/build_info.hpp"
#include "ops/cli_docs.hpp"

int main(int argc, char** argv) {
  // Writes to a peer that has gone (splice(2) has no MSG_NOSIGNAL) must fail with EPIPE, not kill us.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app("exitpool: a rotating proxy gateway and batch fetcher over pools of exit IPs", "exitpool");
  app.require_subcommand(1);
  app.set_version_flag("--version", exitpool::ops::version_text(), "Print version, git revision and build flags");
  std::function<int()> run;
  exitpool::cli::add_serve(app, run);
  exitpool::cli::add_check(app, run);
  exitpool::cli::add_fetch(app, run);
  exitpool::cli::add_crawl(app, run);
  exitpool::cli::add_fleet(app, run);
  exitpool::cli::add_bench(app, run);
  // Hidden: the build renders the man pages and shell completion with these.
  exitpool::ops::add_doc_commands(app, run, std::string(exitpool::ops::build_version()));
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    exitpool::cli::expand_config(args, app);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exitpool: %s\n", e.what());
    return 2;
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run ? run() : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exitpool: %s\n", e.what());
    return 2;
  }
}
