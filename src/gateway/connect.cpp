#include "gateway/connect.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio.hpp>

#include "gateway/http_request.hpp"
#include "pool/sticky.hpp"
#include "proto/http_head.hpp"
#include "proto/text.hpp"

namespace exitpool::gateway {

namespace {

namespace asio = boost::asio;
namespace socks5 = proto::socks5;
using net::clock;
using net::nothrow_awaitable;

// What a failed dial says about the attempt: whose fault, and what.
pool::attempt_outcome dial_failed(const net::dial_result& r, std::chrono::microseconds latency) {
  pool::attempt_outcome o;
  o.who = r.exit_fault ? pool::fault::exit : pool::fault::target;
  o.error = r.error;
  o.latency = latency;
  return o;
}

}  // namespace

net::awaitable<connect_outcome> connect_via_pool(shard_state& shard, const proto::route_params& params,
                                                 std::string host, std::uint16_t port, net::dial_mode mode,
                                                 std::vector<const pool::exit*>& tried, connect_options copts) {
  using pool::failure;
  auto& g = shard.shared;
  const auto& cfg = g.cfg;
  connect_outcome out;
  auto fail = [&out](failure f, std::string message, socks5::reply upstream = socks5::reply::general_failure,
                     std::string retry_after = {}) {
    out.error = make_error(f, std::move(message), std::move(retry_after));
    out.socks = socks_reply_for(f, upstream);
  };
  if (auto why = target_name_problem(host); !why.empty()) {
    // The client's input: refused before any exit is dialled, nobody's health touched.
    fail(failure::bad_request, std::move(why));
    co_return out;
  }
  if (auto why = g.acl.check(host, port); !why.empty()) {
    fail(failure::target_prohibited, "target refused: " + why);
    co_return out;
  }
  const auto snap = g.pool.load();
  const std::string host_key = proto::lower(host);
  pool::attempt_request req;
  req.f.country = params.country;
  req.f.city = params.city;
  req.f.type = params.type;
  req.f.state = params.state;
  req.f.asn = params.asn;
  req.host = host_key;
  std::string key;
  if (!params.session.empty()) {
    key = params.user + '\x1f' + params.session;
    req.sticky_key = key;
    req.sticky_ttl = std::chrono::minutes(params.session_minutes.value_or(cfg.session_minutes));
    req.move_when_busy = params.session_move_when_busy.value_or(cfg.session_move_when_busy);
  }
  net::dial_options opts;
  opts.timeout = cfg.dial_timeout;
  opts.tls_verified = &g.tls_verified;
  opts.tls_insecure = &g.tls_insecure;
  opts.resolver = shard.resolver.get();
  opts.happy_eyeballs_delay = cfg.happy_eyeballs_delay;
  if (!key.empty()) {
    opts.source_key = pool::hash64(key);  // a prefix exit keeps the session on one address
  }
  opts.check_address = [&g](const asio::ip::address& a, std::uint16_t p) { return g.acl.check(a, p); };

  const auto queue_deadline = clock::now() + cfg.queue_timeout;
  const std::size_t tried_before = tried.size();
  std::string failures;
  net::dial_result last;
  int attempts = 0;
  while (attempts <= cfg.retries) {
    req.exclude = tried;
    auto begun = shard.driver.begin(snap, req, clock::now());
    if (begun.refused == failure::no_match) {
      fail(failure::no_match, "no exit matches " + req.f.describe());
      co_return out;
    }
    if (begun.refused == failure::client_limit) {
      fail(failure::client_limit,
           fmt::format("too many live sticky sessions (the gateway keeps at most {}): reuse a session id, or retry "
                       "when some have expired",
                       cfg.limits.max_sticky_sessions),
           socks5::reply::general_failure, "60");
      co_return out;
    }
    if (begun.refused == failure::no_capacity) {
      auto now = clock::now();
      if (now >= queue_deadline || !copts.queue) {
        auto wait = std::chrono::duration_cast<std::chrono::seconds>(begun.retry_at - now).count() + 1;
        if (begun.wait != pool::session_wait::none) {
          fail(failure::no_capacity,
               fmt::format("the session's exit {} has no capacity for {} now ({}); waited {} ms",
                           begun.session_exit->id(), host_key, pool::session_wait_name(begun.wait),
                           cfg.queue_timeout.count()),
               socks5::reply::general_failure, std::to_string(std::max<long long>(1, wait)));
          co_return out;
        }
        fail(failure::no_capacity,
             fmt::format("no exit has capacity for {} now ({} matching: {} banned for this host, {} "
                         "rate-limited or busy); waited {} ms",
                         host_key, begun.matching, begun.banned, begun.limited, cfg.queue_timeout.count()),
             socks5::reply::general_failure, std::to_string(std::max<long long>(1, wait)));
        co_return out;
      }
      if (g.queued.fetch_add(1, std::memory_order_relaxed) >= cfg.queue_max) {
        g.queued.fetch_sub(1, std::memory_order_relaxed);
        fail(failure::queue_full,
             fmt::format("no exit has capacity for {} now and the wait queue is full ({} waiting)", host_key,
                         cfg.queue_max),
             socks5::reply::general_failure, "1");
        co_return out;
      }
      asio::steady_timer wait(co_await asio::this_coro::executor, std::min(begun.retry_at, queue_deadline));
      co_await wait.async_wait(nothrow_awaitable);
      g.queued.fetch_sub(1, std::memory_order_relaxed);
      req.queued = true;
      continue;
    }
    if (!begun.granted) {
      break;  // every matching exit was tried
    }
    pool::attempt a = std::move(begun.granted);
    pool::exit& chosen = a.chosen();
    std::string reuse_key;
    if (copts.keep_alive) {
      reuse_key = upstream_pool::key(chosen, proto::format_authority(host, port), key);
      if (copts.allow_reuse) {
        if (auto idle = shard.idle_upstreams.take(reuse_key, clock::now())) {
          out.dial.upstream = std::move(*idle);
          out.attempt = std::move(a);
          out.reused = true;
          out.reuse_key = std::move(reuse_key);
          co_return out;
        }
      }
    }
    if (++attempts > 1) {
      shard.metrics->on_retry();
    }
    auto t0 = clock::now();
    auto r = co_await net::dial(chosen, host, port, mode, opts);
    auto now = clock::now();
    auto latency = std::chrono::duration_cast<std::chrono::microseconds>(now - t0);
    shard.metrics->on_dial(r.error, std::chrono::duration<double>(now - t0).count());
    if (r.error == failure::none) {
      if (mode != net::dial_mode::forward) {
        a.complete({.connected = true, .latency = latency}, now);
      }
      out.dial = std::move(r);
      out.attempt = std::move(a);
      out.dial_latency = latency;
      out.reuse_key = std::move(reuse_key);
      co_return out;
    }
    if (r.error == failure::bad_request) {
      a.complete({.who = pool::fault::client, .error = r.error, .latency = latency}, now);
      fail(failure::bad_request, std::move(r.detail));
      co_return out;
    }
    a.complete(dial_failed(r, latency), now);
    spdlog::debug("dial {} via exit {} failed: {}", proto::clip(proto::format_authority(host, port)), chosen.id(),
                  r.detail);
    if (r.error == failure::target_prohibited) {
      fail(failure::target_prohibited, "target refused: " + r.detail);
      co_return out;
    }
    if (!req.sticky_key.empty() && !r.exit_fault) {
      // The target failed behind a working exit (its name does not resolve, it refused):
      // another exit would not change that, and trying one would move the session.
      fail(r.error, "exit " + chosen.id() + ": " + r.detail, r.socks_reply);
      co_return out;
    }
    tried.push_back(&chosen);
    if (!failures.empty()) {
      failures += "; ";
    }
    failures += chosen.id() + ": " + r.detail;
    last = std::move(r);
  }
  const std::size_t failed = tried.size() - tried_before;
  if (failed == 0) {
    fail(failure::exhausted,
         fmt::format("every exit matching {} was already tried for this request", req.f.describe()));
    co_return out;
  }
  std::string what = failed == 1 ? "exit failed: " : fmt::format("all {} exits tried failed: ", failed);
  fail(last.error, what + failures, last.socks_reply);
  co_return out;
}

}  // namespace exitpool::gateway
