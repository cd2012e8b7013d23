#pragma once
// `exitpool fetch`: the batch fetcher (fetch/fetcher.hpp) on the command line.
//
// Exit codes: 0 every input URL has a result line (an error result counts), 1 a fatal
// error stopped the run (output not writable, input unreadable), 2 usage or pool file
// error, 3 stopped by SIGINT/SIGTERM after finishing the requests in flight (run the
// same command again to continue).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "cli/dns_options.hpp"
#include "fetch/fetcher.hpp"

namespace exitpool::cli {

// The options `fetch` and `crawl` share, as parsed (before prepare_fetch_options).
struct fetch_options {
  fetch::fetch_config cfg;
  std::string policy = "round-robin";
  std::vector<int> ban_statuses{403, 429, 503};
  bool no_resume = false;
  bool no_http2 = false;
  dns_options dns;
};

// Adds the shared options (all but fetch's --input) to `cmd`, bound to `o`.
void add_fetch_options(CLI::App* cmd, fetch_options& o);
// Turns the parsed options into o.cfg. Returns 0, or 2 after printing a usage error;
// throws on a bad --dns-* value.
int prepare_fetch_options(fetch_options& o, const char* command);

// Adds the `fetch` subcommand to `app`; when it is chosen, `run` is set to the action.
void add_fetch(CLI::App& app, std::function<int()>& run);

}  // namespace exitpool::cli
