#pragma once
// `exitpool serve`: command-line and config-file options, then the gateway.
#include <CLI/CLI.hpp>
#include <functional>

namespace exitpool::cli {

// Adds the `serve` subcommand to `app`; when it is chosen, `run` is set to the action.
void add_serve(CLI::App& app, std::function<int()>& run);

}  // namespace exitpool::cli
