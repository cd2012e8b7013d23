#pragma once
// `exitpool fetch`: the batch fetcher (fetch/fetcher.hpp) on the command line.
//
// Exit codes: 0 every input URL has a result line (an error result counts), 1 a fatal
// error stopped the run (output not writable, input unreadable), 2 usage or pool file
// error, 3 stopped by SIGINT/SIGTERM after finishing the requests in flight (run the
// same command again to continue).
#include <CLI/CLI.hpp>
#include <functional>

namespace exitpool::cli {

// Adds the `fetch` subcommand to `app`; when it is chosen, `run` is set to the action.
void add_fetch(CLI::App& app, std::function<int()>& run);

}  // namespace exitpool::cli
