#pragma once
// `exitpool crawl`: follow links from seeds through the pool (crawl/crawler.hpp) on the
// command line. Takes fetch's options (output, WARC, pool, politeness, retries) and its
// own (seeds, scope, robots.txt, limits).
//
// Exit codes as fetch's: 0 the crawl ran out of pages, 1 a fatal error, 2 usage error
// (no usable seed, unreadable seeds file, bad regex or pool file), 3 stopped by
// SIGINT/SIGTERM (run the same command again to continue).
#include <CLI/CLI.hpp>
#include <functional>

namespace exitpool::cli {

// Adds the `crawl` subcommand to `app`; when it is chosen, `run` is set to the action.
void add_crawl(CLI::App& app, std::function<int()>& run);

}  // namespace exitpool::cli
