#pragma once
// `exitpool bench`: concurrency vs parallelism, measured. Runs a grid of (threads x requests
// in flight) against one URL — through a gateway (--via), a pool file (--pool) or this
// machine (neither) — prints req/s, p50/p99 latency, client CPU per request and errors per
// cell, then one line of advice (bench/grid.hpp: advise). --json: one JSON object instead of
// the table; --plot FILE.svg: a heat map of req/s over the grid.
//
// Exit codes: 0 the grid ran and a setting was advised, 1 no cell qualified (every cell had
// errors or no response: the table says why), 2 usage error (a bad list names the value, a
// bad pool line its FILE:LINE).
#include <CLI/CLI.hpp>
#include <functional>

namespace exitpool::cli {

// Adds the `bench` subcommand to `app`; when it is chosen, `run` is set to the action.
void add_bench(CLI::App& app, std::function<int()>& run);

}  // namespace exitpool::cli
