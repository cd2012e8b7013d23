#pragma once
// `exitpool bench`: the load of one grid cell. T threads, each with its own libcurl multi
// handle (fetch::transfer_engine, the client `fetch` and `crawl` use) and its own
// pool::driver (the way every caller gets an exit: a --via gateway is a pool of one line),
// keep their share of C requests for one URL in flight — a closed loop: a finished request
// starts the next at once — until the cell's time is up or grid_bounds::max_requests have
// been started. Nothing is written; a response's body is received and dropped.
//
// Measured: ok responses (status < 400) and their latency (from start() to completion, as
// the client sees it, so a client short of CPU shows it), errors (transport errors, pool
// refusals, statuses >= 400), requests still in flight at the end (abandoned, not counted),
// and the process's CPU (getrusage RUSAGE_SELF over the cell: every thread, setup included).
//
// Threads: run_cell() is called from one thread (the main thread) and starts and joins the
// cell's threads; the snapshot and the state are shared by them (both are thread-safe).

#include <chrono>
#include <memory>
#include <string>

#include "bench/grid.hpp"
#include "fetch/transfer.hpp"
#include "pool/pool.hpp"
#include "pool/selector.hpp"
#include "pool/state.hpp"

namespace exitpool::bench {

struct load_target {
  std::string url;
  std::shared_ptr<const pool::snapshot> snap;
  pool::state* state = nullptr;  // outlives the cells (the pool's health, leases, bans)
  fetch::transfer_options opts;  // per transfer (timeouts, TLS, no body kept)
  pool::policy policy = pool::policy::round_robin;
  std::chrono::milliseconds probe_timeout{std::chrono::seconds(30)};
};

// Runs `c.threads` x `c.inflight` for `duration` and returns `c` with its measurements
// (ran = true). Precondition: c.inflight >= c.threads >= 1. Throws std::runtime_error when
// libcurl cannot start (a thread's failure is rethrown after every thread has joined).
cell run_cell(const load_target& t, cell c, std::chrono::duration<double> duration);

}  // namespace exitpool::bench
