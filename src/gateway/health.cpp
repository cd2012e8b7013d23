#include "gateway/health.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#include "gateway/server.hpp"
#include "net/stream.hpp"
#include "pool/elastic.hpp"
#include "proto/text.hpp"

namespace exitpool::gateway {

namespace {

namespace asio = boost::asio;
using net::awaitable;
using net::clock;
using net::nothrow_awaitable;
using config_ptr = std::shared_ptr<const health_check_config>;

// One pass: the exits to probe, taken off the list by up to `concurrency` workers.
// Lives on one io_context; shared by the workers and the coroutine awaiting them.
struct pass {
  explicit pass(const asio::any_io_executor& ex) : done(ex, clock::time_point::max()) {}
  std::vector<std::shared_ptr<pool::exit>> todo;
  std::size_t next = 0;
  std::size_t running = 0;
  asio::steady_timer done;  // cancelled when the last worker ends
};

double seconds_of(clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// How the checks dial: the gateway's dial timeout and TLS contexts, this shard's resolver.
net::dial_options check_dial_options(shared_state& g, net::resolver* resolver) {
  net::dial_options opts;
  opts.timeout = g.cfg.dial_timeout;
  opts.tls_verified = &g.tls_verified;
  opts.tls_insecure = &g.tls_insecure;
  opts.resolver = resolver;
  return opts;
}

// Probes one exit and completes a check attempt with the outcome. Skips exits in their
// cool-down and probing exits whose probe slot someone else (live traffic) holds.
awaitable<void> probe_one(shared_state& g, pool::driver& d, config_ptr cfg, std::shared_ptr<pool::exit> ex,
                          net::resolver* resolver) {
  auto now = clock::now();
  const auto before = ex->state(now);
  auto check = d.check(nullptr, *ex, now);
  if (!check) {
    co_return;
  }
  const net::dial_options opts = check_dial_options(g, resolver);
  const net::probe_target* target = cfg->target ? &*cfg->target : nullptr;
  // A provider line is checked through one of its virtual exits: its gateway expects the
  // templated credentials (pool/elastic.hpp), with a fresh provider session each time.
  std::shared_ptr<pool::exit> through = ex;
  if (ex->elastic()) {
    const pool::filter any;
    const auto session = static_cast<std::uint64_t>(now.time_since_epoch().count()) ^ ex->id_hash();
    through = pool::make_virtual(*ex, {.f = &any, .session = session}, {});
  }
  const auto r = co_await net::probe_exit(*through, target, opts, cfg->timeout);
  now = clock::now();
  pool::attempt_outcome o;
  o.who = r.ok ? pool::fault::none : r.exit_fault ? pool::fault::exit : pool::fault::target;
  o.error = r.kind;
  o.status = r.status;
  // Only a passed check proves the exit; a check target that failed says nothing of it.
  o.connected = r.ok;
  // The latency sample is the dial's, like the passive checks' (connect + proxy handshake).
  o.latency = std::chrono::microseconds(static_cast<std::int64_t>(1000 * std::max(0.0, r.dial_ms)));
  check.complete(o, now);
  if (!r.ok && !r.exit_fault) {
    spdlog::debug("health check of exit {}: the check target failed, not the exit: {}", ex->id(), r.error);
    co_return;
  }
  const auto after = ex->state(now);
  if (after == pool::exit_state::ejected && before != pool::exit_state::ejected) {
    const char* how = before == pool::exit_state::probing ? "still failing, ejected again" : "ejected";
    spdlog::warn("health check: exit {} {} for {:.1f} s: {}", ex->id(), how, seconds_of(ex->down_until() - now),
                 r.error);
  } else if (after == pool::exit_state::healthy && before != pool::exit_state::healthy) {
    spdlog::info("health check: exit {} is healthy again ({:.1f} ms)", ex->id(), r.latency_ms);
  } else if (!r.ok) {
    spdlog::debug("health check of exit {} failed ({} in a row): {}", ex->id(), ex->consecutive_failures(), r.error);
  }
}

awaitable<void> pass_worker(shared_state& g, pool::driver& d, config_ptr cfg, std::shared_ptr<pass> p,
                            net::resolver* resolver) {
  // Ends the pass when the last worker ends, however it ends.
  struct finished {
    pass& p;
    ~finished() {
      if (--p.running == 0) {
        p.done.cancel();
      }
    }
  } guard{*p};
  while (p->next < p->todo.size()) {
    auto ex = p->todo[p->next++];
    co_await probe_one(g, d, cfg, std::move(ex), resolver);
  }
}

void log_worker_exception(std::exception_ptr e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("health check ended by an unexpected exception: {}", ex.what());
  }
}

// Probes `todo`, at most cfg->concurrency at once; returns when every probe ended.
awaitable<void> run_pass(shared_state& g, pool::driver& d, config_ptr cfg,
                         std::vector<std::shared_ptr<pool::exit>> todo, net::resolver* resolver) {
  if (todo.empty()) {
    co_return;
  }
  auto executor = co_await asio::this_coro::executor;
  auto p = std::make_shared<pass>(executor);
  p->todo = std::move(todo);
  p->running = std::min(std::max<std::size_t>(1, cfg->concurrency), p->todo.size());
  for (std::size_t k = p->running; k > 0; --k) {
    asio::co_spawn(executor, pass_worker(g, d, cfg, p, resolver), log_worker_exception);
  }
  // One thread: `running` only drops while this coroutine is suspended, so the check
  // and the wait cannot miss the last worker's cancel.
  while (p->running > 0) {
    co_await p->done.async_wait(nothrow_awaitable);
  }
}

// Every exit of the current snapshot except those in their cool-down; probing ones first.
std::vector<std::shared_ptr<pool::exit>> full_pass_list(const pool::snapshot& snap, pool::time_point now) {
  std::vector<std::shared_ptr<pool::exit>> probing;
  std::vector<std::shared_ptr<pool::exit>> healthy;
  for (const auto& e : snap.exits()) {
    switch (e->state(now)) {
      case pool::exit_state::probing:
        probing.push_back(e);
        break;
      case pool::exit_state::healthy:
        healthy.push_back(e);
        break;
      case pool::exit_state::ejected:
        break;
    }
  }
  probing.insert(probing.end(), healthy.begin(), healthy.end());
  return probing;
}

awaitable<void> full_passes(shared_state& g, pool::driver& d, config_ptr cfg, net::resolver* resolver) {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    // The first pass too waits an interval: a fresh gateway has no reason to doubt its exits.
    timer.expires_after(std::chrono::duration_cast<clock::duration>(
        std::chrono::duration<double, std::milli>(static_cast<double>(cfg->interval.count()) * jitter(rng))));
    if (auto [ec] = co_await timer.async_wait(nothrow_awaitable); ec) {
      co_return;
    }
    auto snap = g.pool.load();
    co_await run_pass(g, d, cfg, full_pass_list(*snap, clock::now()), resolver);
  }
}

// Exits whose cool-down ended and that no one is probing: probed without waiting for
// the next full pass (or for live traffic, which may never come).
awaitable<void> probing_passes(shared_state& g, pool::driver& d, config_ptr cfg, net::resolver* resolver) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(cfg->probing_poll);
    if (auto [ec] = co_await timer.async_wait(nothrow_awaitable); ec) {
      co_return;
    }
    const auto now = clock::now();
    auto snap = g.pool.load();
    std::vector<std::shared_ptr<pool::exit>> todo;
    for (const auto& e : snap->exits()) {
      if (e->state(now) == pool::exit_state::probing && !e->probe_busy_until(now, g.cfg.health.probe_timeout)) {
        todo.push_back(e);
      }
    }
    co_await run_pass(g, d, cfg, std::move(todo), resolver);
  }
}

// --learn-exit-ip: the sticky virtual exits of every provider line whose IP is not known
// yet, fetched through once each (a few tries); the IP the check URL saw is kept. Not a
// health check: the outcome is reported to no one.
awaitable<void> learning_passes(shared_state& g, config_ptr cfg, net::resolver* resolver) {
  constexpr int max_tries = 3;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(cfg->probing_poll);
    if (auto [ec] = co_await timer.async_wait(nothrow_awaitable); ec) {
      co_return;
    }
    auto snap = g.pool.load();
    for (const std::uint32_t i : snap->elastic()) {
      pool::family& fam = *snap->exits()[i]->virtuals();
      for (const auto& v : fam.live(clock::now())) {
        if (!fam.wants_ip(v->id_hash(), max_tries)) {
          continue;
        }
        const auto r = co_await net::probe_exit(*v, &*cfg->target, check_dial_options(g, resolver), cfg->timeout);
        fam.learn(v->id_hash(), r.ok ? r.exit_ip : std::string());
        if (r.ok && !r.exit_ip.empty()) {
          spdlog::debug("virtual exit {} leaves from {}", v->id(), r.exit_ip);
        }
      }
    }
  }
}

}  // namespace

health_check_config make_health_check_config(const config& c) {
  health_check_config out;
  out.interval = c.check_interval;
  out.timeout = c.check_timeout;
  out.learn_exit_ip = c.learn_exit_ip;
  if (!c.check_url.empty()) {
    auto parsed = net::parse_probe_target(c.check_url);
    if (!parsed.target) {
      throw std::invalid_argument(fmt::format("--check-url {}: {}", proto::printable(c.check_url), parsed.error));
    }
    out.target = std::move(parsed.target);
  }
  return out;
}

awaitable<void> health_loop(shared_state& g, health_check_config cfg, net::resolver* resolver) {
  using namespace asio::experimental::awaitable_operators;
  auto shared_cfg = std::make_shared<const health_check_config>(std::move(cfg));
  spdlog::info("active health checks every {:.1f} s (timeout {:.1f} s): {}", seconds_of(shared_cfg->interval),
               seconds_of(shared_cfg->timeout),
               shared_cfg->target ? "GET " + proto::printable(shared_cfg->target->url) + " through each exit"
                                  : std::string("handshake with each exit"));
  // The checks' own driver: they choose no exit, so its selector is never used.
  pool::driver d(g.cfg.policy, 0, *g.state, g.cfg.health.probe_timeout);
  if (shared_cfg->learn_exit_ip && shared_cfg->target) {
    co_await (full_passes(g, d, shared_cfg, resolver) && probing_passes(g, d, shared_cfg, resolver) &&
              learning_passes(g, shared_cfg, resolver));
  } else {
    co_await (full_passes(g, d, shared_cfg, resolver) && probing_passes(g, d, shared_cfg, resolver));
  }
}

}  // namespace exitpool::gateway
