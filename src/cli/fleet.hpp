#pragma once
// `exitpool fleet --state redis://...`: the live gateways of a fleet.
#include <CLI/CLI.hpp>
#include <functional>

namespace exitpool::cli {

// Adds the `fleet` subcommand to `app`; when it is chosen, `run` is set to the action.
void add_fleet(CLI::App& app, std::function<int()>& run);

}  // namespace exitpool::cli
