#include "gateway/server.hpp"

// Why one file over 600 lines: run_server owns the process's lifetime (shards, listeners,
// the admin thread, signals, reloads, the watchdog) in one function on purpose: teardown
// order follows declaration order, which only stays right when it is all in one place.

#include <fmt/format.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "admin/server.hpp"
#include "fleet/redis_state.hpp"
#include "gateway/health.hpp"
#include "gateway/heap_trim.hpp"
#include "gateway/session.hpp"
#include "net/shards.hpp"
#include "net/socket.hpp"
#include "net/stream.hpp"
#include "net/tls.hpp"
#include "net/tls_stream.hpp"
#include "ops/sd_notify.hpp"
#include "pool/pool_file.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::gateway {

namespace asio = boost::asio;
using net::tcp;

namespace {

void log_session_exception(std::exception_ptr e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("session ended by an unexpected exception: {}", ex.what());
  }
}

void log_health_exception(std::exception_ptr e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("active health checks stopped by an unexpected exception: {}", ex.what());
  }
}

// `port_options`: a --port-map port's sticky session (null on the main listener).
asio::awaitable<void> accept_loop(shard_state& shard, tcp::acceptor& acceptor,
                                  const proto::route_params* port_options) {
  const auto protocol = acceptor.local_endpoint().protocol();
  for (unsigned accepted = 1;; ++accepted) {
    auto [ec, sock] = co_await net::accept_socket(acceptor, protocol);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        co_return;
      }
      // Out of descriptors and the like: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await t.async_wait(net::nothrow_awaitable);
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), run_session(std::move(sock), shard, port_options), log_session_exception);
    if (accepted % 4 == 0) {
      // A flood of connections must not starve the sessions already running on this shard.
      co_await asio::post(acceptor.get_executor(), asio::use_awaitable);
    }
  }
}

// Closes this shard's idle upstream connections that have outlived their keep-alive.
asio::awaitable<void> idle_sweeper(shard_state& shard) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (;;) {
    t.expires_after(std::chrono::seconds(5));
    auto [ec] = co_await t.async_wait(net::nothrow_awaitable);
    if (ec) {
      co_return;
    }
    shard.idle_upstreams.sweep(net::clock::now());
  }
}

// Stamp of the pool file for --watch: modification time and size.
std::pair<std::filesystem::file_time_type, std::uintmax_t> file_stamp(const std::string& path) {
  std::error_code ec;
  auto t = std::filesystem::last_write_time(path, ec);
  auto n = std::filesystem::file_size(path, ec);
  return {ec ? std::filesystem::file_time_type{} : t, ec ? 0 : n};
}

tcp::acceptor make_listener(asio::io_context& ctx, const tcp::endpoint& ep) {
  tcp::acceptor a(ctx);
  a.open(ep.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  // One listener per shard on the same port: the kernel spreads new connections.
  a.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
  if (ep.address().is_v6()) {
    a.set_option(asio::ip::v6_only(true));
  }
  // Accepted sockets inherit it: no setsockopt per connection.
  a.set_option(tcp::no_delay(true));
  a.bind(ep);
  a.listen(asio::socket_base::max_listen_connections);
  a.non_blocking(true);  // accept_socket calls accept4 until it would block
  return a;
}

// Runs `tick` on the main loop every `period` from now until the loop stops (the sweep and the
// burst trim). Main thread only.
class main_timer {
 public:
  main_timer(asio::io_context& ctx, std::chrono::steady_clock::duration period, std::function<void()> tick)
      : timer_(ctx), period_(period), tick_(std::move(tick)) {
    arm();
  }

 private:
  void arm() {
    timer_.expires_after(period_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      tick_();
      arm();
    });
  }

  asio::steady_timer timer_;
  std::chrono::steady_clock::duration period_;
  std::function<void()> tick_;
};

}  // namespace

std::unique_ptr<pool::state> make_fleet_state(shared_state& shared, admin::metrics_registry& metrics) {
  const auto& cfg = shared.cfg;
  fleet::redis_state_config fc;
  try {
    fc.url = fleet::parse_redis_url(cfg.state_url);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("--state: {}", e.what()));
  }
  if (!cfg.state_password.empty()) {
    fc.url.password = cfg.state_password;
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  fc.gateway_id = fmt::format("{}:{}:{}", host, ::getpid(), cfg.listen);
  fc.gateway_info = fmt::format("listen={} admin={} pid={}", cfg.listen,
                                cfg.admin_listen.empty() ? "-" : cfg.admin_listen, ::getpid());
  fc.limits = cfg.limits;
  fc.health = cfg.health;
  fc.up_gauge = &metrics.state_backend_up;
  fc.fleet_gauge = &metrics.fleet_gateways;
  auto st = std::make_unique<fleet::redis_state>(std::move(fc), shared.pool);
  // A refused password or database throws (startup error); an unreachable Redis starts
  // degraded (logged by the state's sync task), so a fleet can restart while Redis is down.
  st->start();
  return st;
}

void shard_state::on_attempt(const pool::exit& e, const pool::attempt_outcome& o) {
  if (o.ban && metrics != nullptr) {
    metrics->on_ban();
  }
}

void shard_state::on_session_wait(pool::session_wait why) {
  if (metrics != nullptr) {
    metrics->on_session_wait(why);
  }
}

void shard_state::on_session_move(pool::session_move why) {
  if (metrics != nullptr) {
    metrics->on_session_move(why);
  }
}

shared_state::shared_state(config c, std::shared_ptr<const pool::snapshot> snap,
                           std::unordered_map<std::string, std::string> user_passwords)
    : cfg(std::move(c)),
      pool(std::move(snap)),
      users(std::move(user_passwords)),
      state(std::make_unique<pool::local_state>(cfg.limits, cfg.health)),
      ban_policy(cfg.ban_statuses, cfg.ban_patterns, cfg.ban_duration),
      tls_verified(net::make_tls_context(true, cfg.ca_file)),
      tls_insecure(net::make_tls_context(false, "")) {
  std::vector<cidr> deny;
  if (!cfg.no_default_deny) {
    for (auto d : default_denied_networks) {
      deny.push_back(*parse_cidr(d));
    }
  }
  for (const auto& d : cfg.deny) {
    auto c = parse_cidr(d);
    if (!c) {
      throw std::runtime_error(fmt::format("--deny '{}': expected an address or ADDR/PREFIX", d));
    }
    deny.push_back(*c);
  }
  auto ports = parse_port_ranges(cfg.allow_ports);
  if (!ports) {
    throw std::runtime_error(
        fmt::format("--allow-ports '{}': expected PORT or LOW-HIGH, comma-separated", cfg.allow_ports));
  }
  for (const auto& a : cfg.allow_clients) {
    auto c = parse_cidr(a);
    if (!c) {
      throw std::runtime_error(fmt::format("--allow-client '{}': expected an address or ADDR/PREFIX", a));
    }
    allow_clients.push_back(*c);
  }
  std::vector<tcp::endpoint> self{parse_listen(cfg.listen)};
  std::vector<std::uint16_t> reserved{self.front().port()};
  if (!cfg.admin_listen.empty()) {
    self.push_back(parse_listen(cfg.admin_listen));
    reserved.push_back(self.back().port());
  }
  for (const auto& text : cfg.port_maps) {
    auto parsed = parse_port_map(text);
    if (!parsed.map) {
      throw std::runtime_error(parsed.error);
    }
    port_maps.push_back(std::move(*parsed.map));
  }
  if (auto err = check_port_maps(port_maps, reserved); !err.empty()) {
    throw std::runtime_error(err);
  }
  // The mapped ports are the gateway's own too: a request to one would loop.
  for (const auto& m : port_maps) {
    for (unsigned p = m.first; p <= m.last; ++p) {
      self.emplace_back(self.front().address(), static_cast<std::uint16_t>(p));
    }
  }
  acl = access_policy(std::move(deny), std::move(*ports), std::move(self), local_addresses());
  for (const auto& [user, password] : users) {
    user_connections.emplace(user, std::make_unique<std::atomic<int>>(0));
  }
}

std::unordered_map<std::string, std::string> load_users(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error(fmt::format("{}: cannot open users file", path));
  }
  std::unordered_map<std::string, std::string> users;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') {
      continue;
    }
    line = line.substr(first);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      throw std::runtime_error(fmt::format("{}:{}: expected user:password", path, n));
    }
    std::string user = line.substr(0, colon);
    if (user.find_first_of(" \t") != std::string::npos) {
      throw std::runtime_error(fmt::format("{}:{}: user name contains white space", path, n));
    }
    if (!users.emplace(user, line.substr(colon + 1)).second) {
      throw std::runtime_error(fmt::format("{}:{}: user '{}' appears twice", path, n, user));
    }
  }
  return users;
}

tcp::endpoint parse_listen(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument("expected [ADDR]:PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      throw std::invalid_argument("expected ADDR:PORT");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host == "localhost") {
    host = "127.0.0.1";
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    throw std::invalid_argument(fmt::format("'{}' is not an IP address", host));
  }
  unsigned long p = 0;
  try {
    std::size_t used = 0;
    p = std::stoul(port, &used);
    if (used != port.size() || p > 65535) {
      throw std::invalid_argument("");
    }
  } catch (const std::exception&) {
    throw std::invalid_argument(fmt::format("'{}' is not a port number", port));
  }
  return tcp::endpoint(addr, static_cast<std::uint16_t>(p));
}

std::string reload_pool(shared_state& shared, admin::metrics_registry* metrics) {
  if (!shared.sources) {
    return "no pool file to reload (the embedded default pool is in use)";
  }
  // Runs on the main thread, not on a shard: the shards keep serving the old snapshot
  // until the store below. The parse may use a second thread for a big file.
  using fsec = std::chrono::duration<double>;
  const auto t0 = std::chrono::steady_clock::now();
  auto old = shared.pool.load();
  std::shared_ptr<const pool::snapshot> next;
  fsec read_s{};
  try {
    auto merged = shared.sources->collect();
    read_s = std::chrono::steady_clock::now() - t0;
    for (std::size_t i = 0; i < merged.duplicates.size() && i < 10; ++i) {
      spdlog::warn("pool: exit left out, its id is taken: {}", merged.duplicates[i]);
    }
    if (merged.duplicates.size() > 10) {
      spdlog::warn("pool: {} more exits left out for a duplicate id", merged.duplicates.size() - 10);
    }
    next = pool::snapshot::build(std::move(merged.exits), old.get(), shared.cfg.limits);
  } catch (const std::exception& e) {
    if (metrics != nullptr) {
      metrics->pool_reloads_refused.fetch_add(1, std::memory_order_relaxed);
    }
    return e.what();
  }
  shared.pool.store(next);
  const fsec total = std::chrono::steady_clock::now() - t0;
  if (metrics != nullptr) {
    metrics->pool_reloads.fetch_add(1, std::memory_order_relaxed);
    metrics->pool_reload_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(total).count(),
                                  std::memory_order_relaxed);
  }
  const std::size_t kept = next->carried_over();
  spdlog::info(
      "pool reloaded from {} in {:.3f} s (read and parse {:.3f}, build {:.3f}): {} exits ({} kept, "
      "{} new or changed, {} removed or changed)",
      shared.sources->describe(), total.count(), read_s.count(), (total - read_s).count(), next->size(), kept,
      next->size() - kept, old->size() - kept);
  // The old snapshot goes now unless a session still holds it. Its exits (a million
  // make ~0.5 GB) go back to the allocator in small pieces, which glibc keeps unless asked
  // to hand the free pages back to the system.
  old.reset();
  const auto trim_start = std::chrono::steady_clock::now();
  ::malloc_trim(0);
  spdlog::debug("malloc_trim after the reload: {:.3f} s", fsec(std::chrono::steady_clock::now() - trim_start).count());
  return {};
}

int run_server(config cfg, std::shared_ptr<pool_sources> sources, std::shared_ptr<const pool::snapshot> snap,
               std::unordered_map<std::string, std::string> users, const std::function<void(int)>& on_ready) {
  const int threads = cfg.threads > 0 ? cfg.threads : net::hardware_threads();
  const auto endpoint = parse_listen(cfg.listen);
  shared_state shared(std::move(cfg), std::move(snap), std::move(users));
  shared.sources = std::move(sources);
  net::shards runtime(threads);
  admin::metrics_registry metrics(static_cast<std::size_t>(threads));
  if (!shared.cfg.state_url.empty()) {
    shared.state = make_fleet_state(shared, metrics);  // before the shards bind to it
  }
  // The admin endpoint listens before the proxy port does (whoever waits for the proxy port finds it
  // up too) and has a thread of its own: rendering /exits or the dashboard for a big
  // pool takes milliseconds that would otherwise stall every connection of one shard. It
  // only reads atomics, the snapshot and the striped tables, so it needs no shard.
  admin::admin_context admin_ctx;
  admin_ctx.snapshot = [&shared] { return shared.pool.load(); };
  admin_ctx.metrics = &metrics;
  admin_ctx.bans = shared.state.get();
  admin_ctx.users = shared.users;
  if (!shared.cfg.state_url.empty()) {
    admin_ctx.state_backend = fleet::redacted(fleet::parse_redis_url(shared.cfg.state_url));  // parsed above
  }
  admin_ctx.sources = [&shared](pool::time_point now) {
    return shared.sources ? shared.sources->status(now) : std::vector<pool::source_status>{};
  };
  // The dashboard's hour of traffic (sampled on the admin thread, read there) and reload history.
  admin::traffic_history history;
  admin::reload_log reloads;
  reloads.add({std::chrono::system_clock::now(), true, shared.pool.load()->size(), 0, "startup"});
  admin_ctx.history = &history;
  admin_ctx.reloads = &reloads;
  // Declared after what its coroutines refer to, so that it goes first however this function is left.
  net::shards admin_loop(shared.cfg.admin_listen.empty() ? 0 : 1, "admin");
  if (!shared.cfg.admin_listen.empty()) {
    auto admin_ep = parse_listen(shared.cfg.admin_listen);
    tcp::acceptor a(admin_loop.context(0));
    a.open(admin_ep.protocol());
    a.set_option(asio::socket_base::reuse_address(true));
    a.bind(admin_ep);
    a.listen();
    asio::co_spawn(admin_loop.context(0), admin::admin_listener(std::move(a), admin_ctx), asio::detached);
    asio::co_spawn(admin_loop.context(0), admin::history_sampler(history, metrics), asio::detached);
  }

  std::vector<std::unique_ptr<shard_state>> shard_states;
  for (int i = 0; i < threads; ++i) {
    auto seed = static_cast<std::uint64_t>(std::random_device{}()) << 32 | static_cast<std::uint64_t>(i);
    auto st = std::make_unique<shard_state>(shared, seed, i);
    st->metrics = &metrics.shard(static_cast<std::size_t>(i));
    st->acceptor = std::make_unique<tcp::acceptor>(make_listener(runtime.context(i), endpoint));
    st->resolver = std::make_unique<net::resolver>(runtime.context(i).get_executor(), shared.cfg.dns, st->metrics);
    asio::co_spawn(runtime.context(i), accept_loop(*st, *st->acceptor, nullptr), asio::detached);
    asio::co_spawn(runtime.context(i), idle_sweeper(*st), asio::detached);
    shard_states.push_back(std::move(st));
  }

  // --port-map: one listening socket per port, the ports dealt round-robin to the shards
  // (a port's session is shared state: any shard serves it the same exit).
  std::size_t next_shard = 0;
  for (const auto& m : shared.port_maps) {
    for (unsigned p = m.first; p <= m.last; ++p) {
      auto& st = *shard_states[next_shard++ % shard_states.size()];
      auto mp = std::make_unique<shard_state::mapped_port>();
      mp->options = port_session(m, static_cast<std::uint16_t>(p));
      tcp::endpoint ep(endpoint.address(), static_cast<std::uint16_t>(p));
      try {
        mp->acceptor = std::make_unique<tcp::acceptor>(make_listener(runtime.context(st.index), ep));
      } catch (const boost::system::system_error& e) {
        throw std::runtime_error(
            fmt::format("--port-map '{}': cannot listen on port {}: {}", m.text, p, e.code().message()));
      }
      asio::co_spawn(runtime.context(st.index), accept_loop(st, *mp->acceptor, &mp->options), asio::detached);
      st.mapped_ports.push_back(std::move(mp));
    }
  }

  // Active health checks run on shard 0: they only dial and report to the exits' atomics.
  if (shared.cfg.check_interval.count() > 0) {
    asio::co_spawn(runtime.context(0),
                   health_loop(shared, make_health_check_config(shared.cfg), shard_states[0]->resolver.get()),
                   log_health_exception);
  }

  asio::io_context main_ctx(1);
  asio::signal_set signals(main_ctx, SIGINT, SIGTERM, SIGHUP);
  asio::steady_timer drain_timer(main_ctx);
  asio::steady_timer watch_timer(main_ctx);
  bool draining = false;
  auto total_active = [&] {
    int n = 0;
    for (const auto& st : shard_states) {
      n += st->active_sessions.load(std::memory_order_relaxed);
    }
    return n;
  };
  std::function<void()> poll_drain;
  auto deadline = net::clock::now();
  poll_drain = [&] {
    if (total_active() == 0 || net::clock::now() >= deadline) {
      if (total_active() > 0) {
        spdlog::warn("drain deadline passed with {} sessions open: closing them", total_active());
      }
      runtime.stop();
      main_ctx.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(50));
    drain_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) {
        poll_drain();
      }
    });
  };
  // SIGHUP, --watch and a URL source's new list, on this (main) thread: the shards keep
  // serving meanwhile. `what` names the cause in the reload history.
  auto reload = [&](const std::string& what) {
    ops::sd_notify(ops::reloading_state());
    const auto t0 = std::chrono::steady_clock::now();
    auto err = reload_pool(shared, &metrics);
    if (!err.empty()) {
      spdlog::error("pool reload refused, the old pool keeps serving: {}", err);
    }
    reloads.add({std::chrono::system_clock::now(), err.empty(), shared.pool.load()->size(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                 err.empty() ? what : err});
    ops::sd_notify("READY=1");
  };
  std::function<void()> wait_signal;
  wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) {
        return;
      }
      if (sig == SIGHUP) {
        reload("reload");
        if (shared.sources) {
          shared.sources->refresh_now();  // URL sources too: a new list reloads again
        }
        wait_signal();
        return;
      }
      if (draining) {
        spdlog::info("second signal {}: stopping now", sig);
        runtime.stop();
        main_ctx.stop();
        return;
      }
      draining = true;
      ops::sd_notify("STOPPING=1");
      spdlog::info("signal {}: no longer accepting; draining {} open sessions (up to {} s; again to stop now)", sig,
                   total_active(), shared.cfg.drain_timeout.count() / 1000.0);
      shared.draining.store(true, std::memory_order_relaxed);
      for (auto& st : shard_states) {
        asio::post(runtime.context(st->index), [a = st->acceptor.get(), s = st.get()] {
          boost::system::error_code ignored;
          a->close(ignored);
          for (auto& mp : s->mapped_ports) {
            mp->acceptor->close(ignored);
          }
          close_idle_sessions();  // kept-alive clients with nothing in flight
        });
      }
      deadline = net::clock::now() + shared.cfg.drain_timeout;
      poll_drain();
      wait_signal();
    });
  };
  wait_signal();

  std::function<void()> watch;
  const auto watched = shared.sources ? shared.sources->files() : std::vector<std::string>{};
  auto stamps_now = [&watched] {
    std::vector<std::pair<std::filesystem::file_time_type, std::uintmax_t>> out;
    for (const auto& f : watched) {
      out.push_back(file_stamp(f));
    }
    return out;
  };
  auto stamp = stamps_now();
  watch = [&] {
    watch_timer.expires_after(std::chrono::seconds(1));
    watch_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec || draining) {
        return;
      }
      auto now_stamp = stamps_now();
      if (now_stamp != stamp) {
        stamp = now_stamp;
        reload("reload");
      }
      watch();
    });
  };
  if (shared.cfg.watch && !watched.empty()) {
    watch();
  }

  // URL sources refresh on their own thread; a new list is a reload here, on the main thread.
  // Several lists that change at once make one reload.
  auto reload_queued = std::make_shared<std::atomic<bool>>(false);
  if (shared.sources) {
    shared.sources->start([&main_ctx, &reload, reload_queued](const std::string& source) {
      if (!reload_queued->exchange(true)) {
        asio::post(main_ctx, [&reload, reload_queued, source] {
          reload_queued->store(false);
          reload("refresh: " + source);
        });
      }
    });
  }
  // The refresh thread posts to main_ctx and calls `reload`: it stops before they go, however
  // this function is left.
  struct sources_stopper {
    pool_sources* sources;
    ~sources_stopper() {
      if (sources != nullptr) {
        sources->stop();
      }
    }
  } stop_sources{shared.sources.get()};

  // Expired sessions, bans, per-host buckets and tier memories are dropped once a minute, and
  // the heap's free pages go back to the system: after a burst (a thousand TLS handshakes at
  // once, a flood of sessions) glibc would otherwise keep its high-water mark for good.
  burst_trim trim_after_burst(100, std::chrono::seconds(10));
  const auto trim_heap = [&](const char* why) {
    const auto start = std::chrono::steady_clock::now();
    ::malloc_trim(0);
    trim_after_burst.trimmed(net::tls_stream::handshakes(), start);
    spdlog::debug("{}: malloc_trim {:.3f} s", why,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  };
  main_timer sweep(main_ctx, std::chrono::minutes(1), [&] {
    shared.state->sweep(net::clock::now());
    trim_heap("sweep");
  });
  // Between sweeps, the pages a burst of TLS handshakes used go back once it is over (heap_trim.hpp).
  main_timer burst_watch(main_ctx, std::chrono::seconds(2), [&] {
    if (trim_after_burst.tick(net::tls_stream::handshakes(), std::chrono::steady_clock::now())) {
      trim_heap("after a burst of TLS handshakes");
    }
  });

  // systemd's watchdog (WatchdogSec=): a ping every half interval while the main loop and
  // every shard answer; a shard stuck in a handler stops the pings and systemd restarts us.
  asio::steady_timer watchdog_timer(main_ctx);
  std::function<void()> watchdog;
  const auto watchdog_every = ops::watchdog_interval() / 2;
  auto answers = std::make_shared<std::atomic<int>>(threads);  // shards that answered the last ping
  watchdog = [&] {
    if (answers->load(std::memory_order_relaxed) == threads) {
      ops::sd_notify("WATCHDOG=1");
      answers->store(0, std::memory_order_relaxed);
      for (auto& st : shard_states) {
        asio::post(runtime.context(st->index), [answers] { answers->fetch_add(1, std::memory_order_relaxed); });
      }
    }
    watchdog_timer.expires_after(watchdog_every);
    watchdog_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) {
        watchdog();
      }
    });
  };

  runtime.start();
  admin_loop.start();
  on_ready(threads);
  ops::sd_notify("READY=1");
  if (watchdog_every.count() > 0) {
    watchdog();
  }
  main_ctx.run();
  if (shared.sources) {
    shared.sources->stop();  // no reload once the main loop is done
  }
  // Teardown order matters. Sockets owned by shard_states must close while their
  // io_context exists; sessions still suspended in the io_contexts refer to
  // shard_states, metrics and the admin context, so the io_contexts (and with them
  // those coroutine frames) must go before these.
  admin_loop.shutdown();
  runtime.stop();
  runtime.join();
  for (auto& st : shard_states) {
    st->acceptor.reset();
    st->mapped_ports.clear();
    st->idle_upstreams.clear();
    st->resolver.reset();  // its sockets and timer belong to the shard's io_context
  }
  runtime.shutdown();
  return 0;
}

}  // namespace exitpool::gateway
