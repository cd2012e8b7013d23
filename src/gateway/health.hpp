#pragma once
// Active health checks: every exit of the current pool snapshot is probed every
// check interval (net::probe_exit: a GET of --check-url through it, or a handshake
// with the exit alone), and the outcome is reported to the exit like a real dial
// (pool::exit::report), so a dead exit is ejected without any client traffic.
//
// Exits in their ejection cool-down are skipped. An exit whose cool-down is over
// (probing) is probed before it returns to rotation: the check claims its probe
// slot (pool::exit::try_claim_probe), so live traffic does not probe it at the
// same time, and its outcome decides. Such exits are looked for every second, not
// just every interval, so an ejected exit that gets no traffic comes back promptly.
// A failure of the check target itself (a non-2xx answer, a target that refuses
// the exit's connection) says nothing about the exit: it is not reported.
//
// Threading: health_loop runs on one shard's io_context (the server starts it on
// shard 0); it reads the pool snapshot and writes only the exits' atomics. It
// runs until that io_context stops. `g` must outlive the io_context.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <optional>

#include "gateway/config.hpp"
#include "net/probe.hpp"

namespace exitpool::gateway {

struct shared_state;

struct health_check_config {
  std::chrono::milliseconds interval{std::chrono::seconds(30)};     // full passes; jittered ±10%
  std::chrono::milliseconds timeout{std::chrono::seconds(5)};       // one probe of one exit
  std::optional<net::probe_target> target;                          // none: handshake check
  std::size_t concurrency = 64;                                     // probes in flight at once
  std::chrono::milliseconds probing_poll{std::chrono::seconds(1)};  // light passes over probing exits
  // --learn-exit-ip: new sticky virtual exits of provider lines are fetched through once
  // (every probing_poll) and the IP the target saw is kept in their family (pool/elastic.hpp).
  bool learn_exit_ip = false;
};

// From the gateway's config (check_interval, check_timeout, check_url). Throws
// std::invalid_argument when check_url is set but not a usable http:// URL.
health_check_config make_health_check_config(const config& c);

// Runs the full passes and the light passes until the io_context stops, resolving exit
// and check-URL host names with `resolver` (that shard's). Precondition: cfg.interval > 0.
boost::asio::awaitable<void> health_loop(shared_state& g, health_check_config cfg, net::resolver* resolver);

}  // namespace exitpool::gateway
