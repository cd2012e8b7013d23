#pragma once
// `exitpool bench`: the measured grid for people and programs. Pure functions of the
// report: a text table (with the advice line), one JSON object (--json) and an SVG heat
// map of req/s over the grid (--plot), hand-written SVG text with no dependency. Any thread.
//
// Client text (the target URL) is escaped for each format (JSON string escaping, XML
// entities and no control bytes in the SVG, control bytes as \xHH in the table). The
// gateway is shown with its password replaced (proto::redacted_url).

#include <string>
#include <vector>

#include "bench/grid.hpp"

namespace exitpool::bench {

struct report {
  std::string url;      // the target, as given
  std::string through;  // "via http://user:***@127.0.0.1:8080" or "pool FILE (N exits)"
  double duration_s = 0;
  std::vector<int> threads;   // the rows, ascending
  std::vector<int> inflight;  // the columns, ascending
  std::vector<cell> cells;    // row by row (plan_grid's order)
  advice adv;
};

// The table, one line per cell, then "advice: ...".
std::string render_table(const report& r);
// One JSON object: {"url", "through", "duration_s", "threads", "concurrency", "cells": [...],
// "advice": {"bound", "threads", "concurrency", "rps", "best_rps", "text"}}, newline-terminated.
std::string render_json(const report& r);
// A standalone SVG document: one square per cell, darker for more req/s (relative to the
// best), the number written in it; skipped cells grey, the advised cell outlined.
std::string render_svg(const report& r);

}  // namespace exitpool::bench
