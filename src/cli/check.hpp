#pragma once
// `exitpool check`: dials every exit of a pool file once, concurrently, fetches
// a check URL through it and reports which exits work, how fast, and the
// address the target saw.
//
// The check URL (--url, required, http:// only for now) must be an endpoint
// you control that answers with the caller's IP address as the first line of
// its body, e.g. nginx `location / { return 200 "$remote_addr\n"; }`. There is
// deliberately no default, so a check never contacts a third-party service.
//
// Exit codes: 0 every exit ok, 1 at least one failed, 2 usage or pool file error.
#include <CLI/CLI.hpp>
#include <functional>

namespace exitpool::cli {

// Adds the `check` subcommand to `app`; when it is chosen, `run` is set to the action.
// The check of one exit is net::probe_exit (net/probe.hpp).
void add_check(CLI::App& app, std::function<int()>& run);

}  // namespace exitpool::cli
