#include "gateway/session.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <regex>

#include "gateway/errors.hpp"
#include "net/dialer.hpp"
#include "net/relay.hpp"
#include "net/stream.hpp"
#include "proto/base64.hpp"
#include "proto/http_head.hpp"
#include "proto/socks5.hpp"
#include "proto/text.hpp"
#include "proto/user_params.hpp"

namespace exitpool::gateway {

namespace {

namespace asio = boost::asio;
namespace socks5 = proto::socks5;
using net::awaitable;
using net::clock;
using net::error_code;
using net::nothrow_awaitable;
using net::tcp;

struct session;
// The sessions of the shard running on this thread (each shard is one thread), as an
// intrusive list: no allocation per connection.
thread_local session* live_sessions = nullptr;

// Per-connection state, shared by the session coroutine and its watchdog timer.
struct session : std::enable_shared_from_this<session> {
  session(tcp::socket s, shard_state& sh)
      : shard(sh),
        open_connections(sh.shared.connections.fetch_add(1, std::memory_order_relaxed) + 1),
        client(std::move(s)),
        timer(client.socket().get_executor()) {
    // Counted for as long as the session lives, including a tunnel handed off to a relay
    // after the session's coroutine has returned (draining waits for these).
    sh.active_sessions.fetch_add(1, std::memory_order_relaxed);
    next_live = live_sessions;
    if (next_live != nullptr) {
      next_live->prev_live = this;
    }
    live_sessions = this;
  }
  ~session() {
    (prev_live != nullptr ? prev_live->next_live : live_sessions) = next_live;
    if (next_live != nullptr) {
      next_live->prev_live = prev_live;
    }
    if (user_slot != nullptr) {
      user_slot->fetch_sub(1, std::memory_order_relaxed);
    }
    shard.shared.connections.fetch_sub(1, std::memory_order_relaxed);
    shard.active_sessions.fetch_sub(1, std::memory_order_relaxed);
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  shard_state& shard;
  const int open_connections;  // client connections open when this one arrived, itself included
  session* prev_live = nullptr;
  session* next_live = nullptr;
  net::stream client;
  net::stream upstream;
  std::string buf;  // bytes read from the client and not consumed yet
  net::activity act;
  clock::duration limit{};  // length of the current phase (see arm); zero: none
  clock::time_point phase_start{};
  // When the pending timer wait ends; max(): no wait pending.
  clock::time_point scheduled = clock::time_point::max();
  bool absolute_deadline = false;
  bool upstream_only = false;
  bool upstream_timed_out = false;
  bool between_requests = false;          // kept alive, waiting for the next request's first byte
  std::atomic<int>* user_slot = nullptr;  // this connection counts against its user's limit
  bool done = false;
  bool timed_out = false;
  asio::steady_timer timer;
  // A plain tunnel runs on after the session's coroutine has returned, driven by the
  // relay's handlers; these keep its exit (and the exit's in-flight count) until it ends.
  std::unique_ptr<net::plain_relay> relay;
  pool::attempt tunnel_attempt;

  const config& cfg() const { return shard.shared.cfg; }
  admin::shard_metrics& metrics() { return *shard.metrics; }
  admin::client_protocol protocol = admin::client_protocol::http;

  // Starts a phase that may last `d` in all (absolute: request heads and handshakes,
  // so a client trickling one byte a second is still cut at the deadline) or whose
  // silences may last `d` (inactivity: bodies, responses, tunnels, keep-alive waits).
  // Zero disables the watchdog (dialing has its own deadline).
  //
  // The timer is lazy: a phase never moves a pending wait later, it only brings it
  // forward. A wait that ends early re-reads the deadline and sleeps again, so a
  // request's several phases cost no timer operations in the common case.
  void arm(clock::duration d, bool absolute = false) {
    limit = d;
    absolute_deadline = absolute;
    upstream_only = false;
    act.touch();
    phase_start = act.last;
    if (d != clock::duration::zero() && phase_start + d < scheduled) {
      wait_until(phase_start + d);
    }
  }
  void arm_deadline(clock::duration d) { arm(d, true); }
  // A deadline for the upstream alone (a response head): on expiry only the upstream is
  // closed and upstream_timed_out set, so the session can still answer or retry.
  void arm_upstream_deadline(clock::duration d) {
    arm(d, true);
    upstream_only = true;
    upstream_timed_out = false;
  }
  clock::time_point deadline() const { return (absolute_deadline ? phase_start : act.last) + limit; }

  void wait_until(clock::time_point t) {
    scheduled = t;
    timer.expires_at(t);  // cancels a pending wait: its handler sees operation_aborted
    timer.async_wait([self = shared_from_this()](error_code ec) {
      if (ec != asio::error::operation_aborted) {
        self->on_timer();
      }
    });
  }

  void finish() {
    done = true;
    timer.cancel();
    client.close();
    upstream.close();
  }

  // Closes the session's sockets once it has been inactive for longer than its phase
  // allows; the session's pending I/O then fails and it unwinds.
  void on_timer() {
    scheduled = clock::time_point::max();
    if (done || limit == clock::duration::zero()) {
      return;  // the next phase with a limit arms the timer again
    }
    const auto now = clock::now();
    const auto due = deadline();
    if (now < due) {
      wait_until(due);
      return;
    }
    if (upstream_only) {
      upstream_timed_out = true;
      upstream.close();
      limit = clock::duration::zero();
      return;
    }
    timed_out = true;
    client.close();
    upstream.close();
  }

  // Reads more client bytes onto buf. False on EOF, error or timeout.
  awaitable<bool> read_client() {
    std::size_t old = buf.size();
    buf.resize(old + 8192);
    auto [ec, n] = co_await client.read_some(asio::buffer(buf.data() + old, 8192));
    buf.resize(old + n);
    if (n > 0) {
      act.touch();
    }
    co_return !ec || n > 0;
  }

  awaitable<bool> write_client(std::string_view data) {
    auto [ec, n] = co_await client.write_all(asio::buffer(data.data(), data.size()));
    co_return !ec;
  }
};

// Counts the response in the metrics and renders it.
std::string error_reply(session& s, const http_error& e) {
  s.metrics().on_http_response(e.status);
  return render_error_response(e);
}

// Counts one request (a CONNECT, a SOCKS5 CONNECT, or one forwarded HTTP request)
// with its outcome when it goes out of scope.
struct request_record {
  explicit request_record(session& s) : s_(s) {}
  request_record(const request_record&) = delete;
  request_record& operator=(const request_record&) = delete;
  ~request_record() { s_.metrics().on_request(s_.protocol, outcome); }
  admin::request_outcome outcome = admin::request_outcome::client_error;

 private:
  session& s_;
};

// ---- authentication and client options ----

struct auth_result {
  std::optional<proto::route_params> params;
  std::string error;  // why the credentials were refused
};

auth_result authenticate(const shared_state& g, const std::optional<std::pair<std::string, std::string>>& creds) {
  auth_result r;
  if (!creds) {
    if (!g.users.empty()) {
      r.error = "proxy authentication required";
      return r;
    }
    r.params.emplace();
    return r;
  }
  std::function<bool(std::string_view)> is_user;
  if (!g.users.empty()) {
    is_user = [&g](std::string_view u) { return g.users.find(std::string(u)) != g.users.end(); };
  }
  auto parsed = proto::parse_credentials(creds->first, creds->second, is_user);
  if (!parsed.params) {
    r.error = parsed.error;
    return r;
  }
  if (!g.users.empty()) {
    auto it = g.users.find(parsed.params->user);
    if (it == g.users.end() || !proto::constant_time_equal(it->second, parsed.params->password)) {
      r.error = "bad username or password";
      return r;
    }
  }
  r.params = std::move(parsed.params);
  return r;
}

// Counts this connection against its user's --max-connections-per-user (once per
// connection). Returns why it is refused, or "".
std::string claim_user_slot(session& s, const std::string& user) {
  const auto& g = s.shard.shared;
  const int max = g.cfg.max_connections_per_user;
  if (s.user_slot != nullptr || max <= 0) {
    return {};
  }
  auto it = g.user_connections.find(user);
  if (it == g.user_connections.end()) {
    return {};
  }
  s.user_slot = it->second.get();
  if (s.user_slot->fetch_add(1, std::memory_order_relaxed) >= max) {
    return fmt::format("too many connections for user {} (limit {})", user, max);
  }
  return {};
}

std::optional<std::pair<std::string, std::string>> basic_credentials(const proto::request_head& head) {
  const auto* h = proto::find_header(head.headers, "Proxy-Authorization");
  if (h == nullptr) {
    return std::nullopt;
  }
  std::string_view v = h->value;
  if (v.size() < 6 || !proto::iequals(v.substr(0, 6), "basic ")) {
    return std::pair{std::string(), std::string()};  // present but unusable: refused below
  }
  v.remove_prefix(6);
  while (!v.empty() && v.front() == ' ') {
    v.remove_prefix(1);
  }
  auto decoded = proto::base64_decode(v);
  if (!decoded) {
    return std::pair{std::string(), std::string()};
  }
  auto colon = decoded->find(':');
  if (colon == std::string::npos) {
    return std::pair{*decoded, std::string()};
  }
  return std::pair{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

// ---- exit selection and dialing with retries ----

struct connect_outcome {
  net::dial_result dial;  // on success: the upstream and leftover bytes
  // The exit and its lease (kept alive with its snapshot). Tunnels: completed here, at the
  // dial. Forwarded requests: completed by the caller once the exit's answer is judged.
  pool::attempt attempt;
  std::chrono::microseconds dial_latency{-1};  // negative: no dial (a reused connection)
  bool reused = false;                         // an idle kept-alive connection, not a fresh dial
  std::string reuse_key;                       // set when the connection may be kept alive afterwards
  http_error error;                            // kind none on success
  socks5::reply socks = socks5::reply::succeeded;
};

// What a failed dial says about the attempt: whose fault, and what.
pool::attempt_outcome dial_failed(const net::dial_result& r, std::chrono::microseconds latency) {
  pool::attempt_outcome o;
  o.who = r.exit_fault ? pool::fault::exit : pool::fault::target;
  o.error = r.error;
  o.latency = latency;
  return o;
}

// Picks an exit for (params, host) and dials through it, trying further exits on
// failure. `tried` carries exits already used by this request (ban retries), so
// they are never picked again. When every remaining exit is out of capacity
// (rate, concurrency, ban, probing), waits for one up to the queue timeout.
awaitable<connect_outcome> connect_via_pool(shard_state& shard, const proto::route_params& params, std::string host,
                                            std::uint16_t port, net::dial_mode mode,
                                            std::vector<const pool::exit*>& tried, bool keep_alive = false,
                                            bool allow_reuse = false, bool queue = true) {
  using pool::failure;
  auto& g = shard.shared;
  const auto& cfg = g.cfg;
  connect_outcome out;
  auto fail = [&out](failure f, std::string message, socks5::reply upstream = socks5::reply::general_failure,
                     std::string retry_after = {}) {
    out.error = make_error(f, std::move(message), std::move(retry_after));
    out.socks = socks_reply_for(f, upstream);
  };
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
  req.host = host_key;
  std::string key;
  if (!params.session.empty()) {
    key = params.user + '\x1f' + params.session;
    req.sticky_key = key;
    req.sticky_ttl = std::chrono::minutes(params.session_minutes.value_or(cfg.session_minutes));
  }
  net::dial_options opts;
  opts.timeout = cfg.dial_timeout;
  opts.tls_verified = &g.tls_verified;
  opts.tls_insecure = &g.tls_insecure;
  opts.check_address = [&g](const asio::ip::address& a, std::uint16_t p) { return g.acl.check(a, p); };
  opts.resolver = shard.resolver.get();

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
    if (begun.refused == failure::no_capacity) {
      auto now = clock::now();
      if (now >= queue_deadline || !queue) {
        auto wait = std::chrono::duration_cast<std::chrono::seconds>(begun.retry_at - now).count() + 1;
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
      continue;
    }
    if (!begun.granted) {
      break;  // every matching exit was tried
    }
    pool::attempt a = std::move(begun.granted);
    pool::exit& chosen = a.chosen();
    std::string reuse_key;
    if (keep_alive) {
      reuse_key = upstream_pool::key(chosen, proto::format_authority(host, port), key);
      if (allow_reuse) {
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
    a.complete(dial_failed(r, latency), now);
    spdlog::debug("dial {} via exit {} failed: {}", proto::format_authority(host, port), chosen.id(), r.detail);
    if (r.error == failure::target_prohibited) {
      fail(failure::target_prohibited, "target refused: " + r.detail);
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

// ---- tunnels ----

awaitable<void> relay_tunnel(std::shared_ptr<session> s, connect_outcome c) {
  s->upstream = std::move(c.dial.upstream);
  s->arm(s->cfg().idle_timeout);
  std::string pending = std::move(s->buf);
  s->metrics().on_tunnel_open();
  if (s->client.is_plain() && s->upstream.is_plain()) {
    // Handed off: the relay's handlers keep the session; its coroutine frames (this one
    // and its callers') are freed while the tunnel stays open.
    s->tunnel_attempt = std::move(c.attempt);
    s->relay = std::make_unique<net::plain_relay>(s->client, s->upstream, s->act);
    session* raw = s.get();
    s->relay->start(std::move(pending), std::move(c.dial.leftover), s, [raw](const net::relay_result& r) {
      raw->metrics().on_tunnel_close();
      raw->metrics().on_bytes(r.bytes_up, r.bytes_down);
      spdlog::debug("tunnel closed: {} bytes up, {} down{}", r.bytes_up, r.bytes_down,
                    r.error ? ", " + r.error.message() : std::string());
      raw->finish();
      raw->tunnel_attempt.release();
    });
    co_return;
  }
  auto r = co_await net::relay(s->client, s->upstream, std::move(pending), std::move(c.dial.leftover), s->act);
  s->metrics().on_tunnel_close();
  s->metrics().on_bytes(r.bytes_up, r.bytes_down);
  spdlog::debug("tunnel via {} closed: {} bytes up, {} down{}", c.attempt.chosen().id(), r.bytes_up, r.bytes_down,
                r.error ? ", " + r.error.message() : std::string());
}

awaitable<void> handle_connect(std::shared_ptr<session> s, proto::request_head head) {
  request_record record(*s);
  http_error refusal;
  auto auth = authenticate(s->shard.shared, basic_credentials(head));
  auto where = proto::parse_authority(head.target, 0);
  if (!auth.params) {
    refusal = make_error(pool::failure::auth_failed, auth.error);
  } else if (auto busy = claim_user_slot(*s, auth.params->user); !busy.empty()) {
    refusal = make_error(pool::failure::client_limit, busy);
  } else if (!where || where->port == 0) {
    refusal = make_error(pool::failure::bad_request,
                         "bad CONNECT target '" + proto::printable(head.target) + "': expected host:port");
  }
  if (refusal) {
    const std::string reply = error_reply(*s, refusal);
    co_await s->write_client(reply);
    co_return;
  }
  s->arm(clock::duration::zero());
  std::vector<const pool::exit*> tried;
  auto c = co_await connect_via_pool(s->shard, *auth.params, where->host, where->port, net::dial_mode::tunnel, tried);
  record.outcome = admin::outcome_of(c.error.kind);
  if (c.error) {
    const std::string reply = error_reply(*s, c.error);
    co_await s->write_client(reply);
    co_return;
  }
  s->metrics().on_http_response(200);
  std::string ok =
      "HTTP/1.1 200 Connection established\r\nX-Exitpool-Exit: " + proto::printable(c.attempt.chosen().id()) +
      "\r\n\r\n";
  if (!co_await s->write_client(ok)) {
    co_return;
  }
  co_await relay_tunnel(s, std::move(c));
}

// ---- forwarding absolute-form requests ----

// Copies a message body of the given framing from `from` (with `pending` bytes
// already read from it) to `to`. Bytes after the body stay in `pending`.
// Returns false if either side failed before the body was complete.
awaitable<bool> copy_body(net::stream& from, std::string& pending, net::stream& to, proto::body_framing framing,
                          net::activity& act, std::uint64_t& copied) {
  using proto::body_kind;
  if (framing.kind == body_kind::none) {
    co_return true;
  }
  std::uint64_t remaining = framing.length;
  proto::chunked_scanner scanner;
  std::unique_ptr<char[]> buffer;  // only when the socket has to be read (most bodies arrive with the head)
  for (;;) {
    if (!pending.empty()) {
      std::size_t take = 0;
      bool finished = false;
      if (framing.kind == body_kind::content_length) {
        take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, pending.size()));
        remaining -= take;
        finished = remaining == 0;
      } else if (framing.kind == body_kind::chunked) {
        auto r = scanner.feed(pending);
        if (r.error) {
          co_return false;
        }
        take = r.consumed;
        finished = r.done;
      } else {
        take = pending.size();
      }
      if (take > 0) {
        auto [ec, n] = co_await to.write_all(asio::buffer(pending.data(), take));
        if (ec) {
          co_return false;
        }
        copied += take;
        pending.erase(0, take);
      }
      if (finished) {
        co_return true;
      }
    } else if (framing.kind == body_kind::content_length && remaining == 0) {
      co_return true;
    }
    if (!buffer) {
      buffer = std::make_unique_for_overwrite<char[]>(16 * 1024);
    }
    auto [ec, n] = co_await from.read_some(asio::buffer(buffer.get(), 16 * 1024));
    if (n > 0) {
      act.touch();
      pending.append(buffer.get(), n);
      continue;
    }
    if (ec) {
      // Reading until close: EOF is the end of the body.
      co_return framing.kind == body_kind::until_close&& ec == asio::error::eof;
    }
  }
}

bool wants_keep_alive(const proto::request_head& head) {
  const auto* c = proto::find_header(head.headers, "Connection");
  const auto* pc = proto::find_header(head.headers, "Proxy-Connection");
  auto has = [&](std::string_view token) {
    return (c && proto::header_has_token(c->value, token)) || (pc && proto::header_has_token(pc->value, token));
  };
  if (head.version_minor == 0) {
    return has("keep-alive");
  }
  return !has("close");
}

bool is_expect_continue(const proto::request_head& head) {
  const auto* e = proto::find_header(head.headers, "Expect");
  return e != nullptr && proto::iequals(e->value, "100-continue");
}

bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" || method == "PUT" ||
         method == "DELETE";
}

// The request head as sent to the exit: origin-form to the target (direct and SOCKS
// exits) or absolute-form with the exit's own credentials (HTTP proxy exits).
std::string upstream_request_head(const proto::request_head& head, const proto::absolute_target& target,
                                  const proto::exit_spec& spec, bool drop_expect, bool keep_alive) {
  const bool via_http_proxy = spec.scheme == proto::exit_scheme::http || spec.scheme == proto::exit_scheme::https;
  const std::string_view request_target = via_http_proxy ? std::string_view(head.target) : target.origin_form;
  // Built by appending into one reserved string: no temporaries per header.
  std::size_t size = head.method.size() + request_target.size() + 64;
  for (const auto& h : head.headers) {
    size += h.name.size() + h.value.size() + 4;
  }
  std::string out;
  out.reserve(size);
  out.append(head.method).append(" ").append(request_target).append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const auto& h : head.headers) {
    if (proto::is_hop_by_hop(h.name, head.headers) || (drop_expect && proto::iequals(h.name, "Expect"))) {
      continue;  // includes the client's Proxy-Authorization: never leaked to the target
    }
    has_host = has_host || proto::iequals(h.name, "Host");
    out.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  if (!has_host) {
    out.append("Host: ").append(proto::format_authority(target.where.host, target.where.port)).append("\r\n");
  }
  if (via_http_proxy && !spec.user.empty()) {
    out.append("Proxy-Authorization: Basic ").append(proto::base64_encode(spec.user + ":" + spec.pass)).append("\r\n");
  }
  // Kept alive only for requests that may be replayed on a fresh connection if the idle
  // one turns out closed; the pool keys it by exit and session so rotation is not pinned.
  out.append(keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
  return out;
}

// Reads the final response head from the exit (interim 1xx heads are dropped: we
// answered 100-continue ourselves). Bytes after the head stay in `rbuf`.
awaitable<std::optional<proto::response_head>> read_response_head(std::shared_ptr<session> s, std::string& rbuf,
                                                                  const std::string& exit_id, http_error& error) {
  for (;;) {
    auto parsed = proto::parse_response_head(rbuf);
    if (parsed.status == proto::parse_status::error) {
      error = make_error(pool::failure::http_protocol_error,
                         "exit " + exit_id + " sent a malformed response: " + parsed.error);
      co_return std::nullopt;
    }
    if (parsed.status == proto::parse_status::complete) {
      rbuf.erase(0, parsed.consumed);
      if (parsed.head.status >= 100 && parsed.head.status < 200 && parsed.head.status != 101) {
        continue;
      }
      co_return std::move(parsed.head);
    }
    std::size_t old = rbuf.size();
    rbuf.resize(old + 8192);
    auto [ec, n] = co_await s->upstream.read_some(asio::buffer(rbuf.data() + old, 8192));
    rbuf.resize(old + n);
    if (n == 0 && ec) {
      error = s->upstream_timed_out || s->timed_out
                  ? make_error(pool::failure::response_timeout,
                               fmt::format("exit {} sent no response head within {} s", exit_id,
                                           s->cfg().response_timeout.count() / 1000.0))
                  : make_error(pool::failure::response_incomplete,
                               "exit " + exit_id + " closed before responding: " + ec.message());
      co_return std::nullopt;
    }
    s->act.touch();
  }
}

// The ban policy's verdict on an answer (pool/ban_policy.hpp). With ban patterns, up to
// 16 KiB of the body are read ahead first (they stay in rbuf for the client).
awaitable<std::optional<std::chrono::milliseconds>> judge_ban(std::shared_ptr<session> s,
                                                              const proto::response_head& resp,
                                                              proto::body_framing framing, std::string& rbuf) {
  const auto& policy = s->shard.shared.ban_policy;
  if (!policy.may_ban(resp.status)) {
    co_return std::nullopt;
  }
  std::string header_lines;
  if (policy.reads_body()) {
    while (framing.kind != proto::body_kind::none && rbuf.size() < pool::ban_policy::look_ahead &&
           !(framing.kind == proto::body_kind::content_length && rbuf.size() >= framing.length)) {
      std::size_t old = rbuf.size();
      rbuf.resize(old + 8192);
      auto [ec, n] = co_await s->upstream.read_some(asio::buffer(rbuf.data() + old, 8192));
      rbuf.resize(old + n);
      if (ec) {
        break;  // the body ends here (or fails); copy_body reports which
      }
    }
    for (const auto& h : resp.headers) {
      pool::append_header_line(header_lines, h.name, h.value);
    }
  }
  const auto* ra = proto::find_header(resp.headers, "Retry-After");
  co_return policy.judge({.status = resp.status,
                          .reason = resp.reason,
                          .header_lines = header_lines,
                          .body = rbuf,
                          .retry_after = ra != nullptr ? std::string_view(ra->value) : std::string_view()},
                         std::chrono::system_clock::now());
}

// An exit's answer to a forwarded request, head read, body not yet relayed.
struct exit_answer {
  std::string exit_id;
  std::string reuse_key;  // non-empty: the connection may be kept alive afterwards
  net::stream upstream;
  proto::response_head resp;
  proto::body_framing framing;
  std::string rbuf;  // body bytes already read
  std::uint64_t bytes_up = 0;
};

// Relays an answer to the client. Returns true when the client connection may carry
// another request.
awaitable<bool> forward_answer(std::shared_ptr<session> s, exit_answer a, bool keep_client, request_record& record) {
  record.outcome = admin::request_outcome::ok;
  s->upstream = std::move(a.upstream);
  const bool keep = keep_client && a.framing.kind != proto::body_kind::until_close &&
                    !s->shard.shared.draining.load(std::memory_order_relaxed);
  // The head, and the body bytes already read with it when they are few, go out in one
  // write: a small response costs one send.
  constexpr std::size_t coalesce_max = 16 * 1024;
  std::size_t body_now = 0;
  if (a.framing.kind == proto::body_kind::content_length) {
    body_now = static_cast<std::size_t>(std::min<std::uint64_t>(a.framing.length, a.rbuf.size()));
  } else if (a.framing.kind == proto::body_kind::until_close) {
    body_now = a.rbuf.size();
  }
  if (body_now > coalesce_max) {
    body_now = 0;
  }
  std::size_t size = a.resp.reason.size() + a.exit_id.size() + body_now + 96;
  for (const auto& h : a.resp.headers) {
    size += h.name.size() + h.value.size() + 4;
  }
  std::string rhead;
  rhead.reserve(size);
  char status[4];
  const int code = std::clamp(a.resp.status, 100, 999);
  status[0] = static_cast<char>('0' + code / 100);
  status[1] = static_cast<char>('0' + code / 10 % 10);
  status[2] = static_cast<char>('0' + code % 10);
  status[3] = ' ';
  rhead.append("HTTP/1.1 ").append(status, 4).append(a.resp.reason).append("\r\n");
  for (const auto& h : a.resp.headers) {
    if (!proto::is_hop_by_hop(h.name, a.resp.headers)) {
      rhead.append(h.name).append(": ").append(h.value).append("\r\n");
    }
  }
  rhead.append("X-Exitpool-Exit: ").append(proto::printable(a.exit_id)).append("\r\n");
  rhead.append(keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
  if (body_now > 0) {
    rhead.append(a.rbuf, 0, body_now);
    a.rbuf.erase(0, body_now);
    if (a.framing.kind == proto::body_kind::content_length) {
      a.framing.length -= body_now;
    }
  }
  s->metrics().on_http_response(a.resp.status);
  if (!co_await s->write_client(rhead)) {
    co_return false;
  }
  std::uint64_t bytes_down = 0;
  bool complete = co_await copy_body(s->upstream, a.rbuf, s->client, a.framing, s->act, bytes_down);
  s->metrics().on_bytes(a.bytes_up, bytes_down + rhead.size());
  const auto* rconn = proto::find_header(a.resp.headers, "Connection");
  const bool upstream_reusable = complete && !a.reuse_key.empty() && a.rbuf.empty() && a.resp.version_minor == 1 &&
                                 a.framing.kind != proto::body_kind::until_close &&
                                 !(rconn && proto::header_has_token(rconn->value, "close"));
  if (upstream_reusable) {
    s->shard.idle_upstreams.put(a.reuse_key, std::move(s->upstream), clock::now());
  } else {
    s->upstream.close();
  }
  s->upstream = net::stream();
  co_return complete&& keep;
}

// Returns true when the client connection may carry another request.
awaitable<bool> handle_forward(std::shared_ptr<session> s, proto::request_head head) {
  auto& g = s->shard.shared;
  request_record record(*s);
  http_error refusal;
  auto auth = authenticate(g, basic_credentials(head));
  auto target = proto::parse_absolute_target(head.target);
  auto framing = proto::request_body_framing(head);
  if (!auth.params) {
    refusal = make_error(pool::failure::auth_failed, auth.error);
  } else if (auto busy = claim_user_slot(*s, auth.params->user); !busy.empty()) {
    refusal = make_error(pool::failure::client_limit, busy);
  } else if (!target) {
    std::string why = !head.target.empty() && head.target.front() == '/'
                          ? "this is a proxy: send absolute-form requests (GET http://host/path) or CONNECT"
                      : head.target.starts_with("https://")
                          ? "https:// targets must use CONNECT"
                          : "bad request target '" + proto::printable(head.target) + "'";
    refusal = make_error(pool::failure::bad_request, why);
  } else if (!framing.framing) {
    refusal = make_error(pool::failure::bad_request, framing.error, {}, framing.error_status);
  }
  if (refusal) {
    const std::string reply = error_reply(*s, refusal);
    co_await s->write_client(reply);
    co_return false;
  }
  const bool keep_client = wants_keep_alive(head);
  const bool expect = is_expect_continue(head);
  const bool has_body = framing.framing->kind != proto::body_kind::none;
  if (expect && head.version_minor == 1 && has_body) {
    // Answer 100-continue here: the body must come to us before any exit is picked.
    if (!co_await s->write_client("HTTP/1.1 100 Continue\r\n\r\n")) {
      co_return false;
    }
  }
  // A banned answer is retried on another exit only when that is safe: idempotent, no
  // body to replay, and nothing sent to the client yet.
  const bool retry_on_ban = !has_body && is_idempotent(head.method);
  const std::string host_key = proto::lower(target->where.host);

  // Upstream keep-alive only for requests that can be replayed on a fresh connection
  // when an idle one turns out to be closed: idempotent and without a body.
  const bool keep_upstream = retry_on_ban;
  bool allow_reuse = keep_upstream;
  std::vector<const pool::exit*> tried;
  // A ban answer kept while another exit is tried: passed through if none can serve.
  std::optional<exit_answer> held;
  for (int round = 0;; ++round) {
    s->arm(clock::duration::zero());
    auto c = co_await connect_via_pool(s->shard, *auth.params, target->where.host, target->where.port,
                                       net::dial_mode::forward, tried, keep_upstream, allow_reuse, !held);
    if (c.error) {
      if (held) {
        co_return co_await forward_answer(s, std::move(*held), keep_client, record);
      }
      record.outcome = admin::outcome_of(c.error.kind);
      const std::string reply = error_reply(*s, c.error);
      co_await s->write_client(reply);
      co_return false;
    }
    if (held) {
      held->upstream.close();
      held.reset();
    }
    s->upstream = std::move(c.dial.upstream);
    pool::exit& chosen = c.attempt.chosen();
    const std::string exit_id = chosen.id();
    std::string out = upstream_request_head(head, *target, chosen.spec(), expect, keep_upstream);
    // A small body already read from the client goes out with the head, in one write.
    proto::body_framing body = *framing.framing;
    if (body.kind == proto::body_kind::content_length && body.length <= 16 * 1024 && s->buf.size() >= body.length &&
        !c.reused) {
      const auto n = static_cast<std::size_t>(body.length);
      out.append(s->buf, 0, n);
      s->buf.erase(0, n);
      body.length = 0;
    }
    const auto sent_at = clock::now();
    // Through an HTTP proxy exit the answer is the exit's own; from a direct or SOCKS exit
    // it is the target's, and the exit proved itself when the dial completed. A reused
    // connection was no dial: its answer says nothing about the exit's health.
    const bool via_proxy =
        chosen.spec().scheme == proto::exit_scheme::http || chosen.spec().scheme == proto::exit_scheme::https;
    const pool::fault answer_fault = via_proxy && !c.reused ? pool::fault::exit : pool::fault::target;
    auto complete = [&](pool::fault who, pool::failure error, int status = 0,
                        std::optional<std::chrono::milliseconds> ban = std::nullopt) {
      const auto now = clock::now();
      pool::attempt_outcome o;
      o.who = who;
      o.error = error;
      o.status = status;
      o.ban = ban;
      o.connected = !c.reused && (status != 0 || !via_proxy);
      o.latency = via_proxy && !c.reused ? std::chrono::duration_cast<std::chrono::microseconds>(now - sent_at)
                                         : c.dial_latency;
      c.attempt.complete(o, now);
    };
    s->arm(s->cfg().idle_timeout);
    auto [wec, wn] = co_await s->upstream.write_all(asio::buffer(out));
    if (wec && c.reused) {
      // The idle connection was closed under us: same request, fresh connection.
      s->upstream.close();
      allow_reuse = false;
      --round;
      continue;
    }
    if (wec) {
      complete(answer_fault, pool::failure::connection_terminated);
      const std::string reply =
          error_reply(*s, make_error(pool::failure::connection_terminated,
                                     "exit " + exit_id + " closed while sending the request: " + wec.message()));
      co_await s->write_client(reply);
      co_return false;
    }
    std::uint64_t bytes_up = 0;
    if (!co_await copy_body(s->client, s->buf, s->upstream, body, s->act, bytes_up)) {
      complete(pool::fault::client, pool::failure::bad_request);
      const std::string reply =
          error_reply(*s, make_error(pool::failure::bad_request, "request body incomplete or malformed"));
      co_await s->write_client(reply);
      co_return false;
    }
    exit_answer a;
    a.exit_id = exit_id;
    a.reuse_key = c.reuse_key;
    a.bytes_up = bytes_up + out.size();
    http_error error;
    s->arm_upstream_deadline(s->cfg().response_timeout);
    auto resp = co_await read_response_head(s, a.rbuf, exit_id, error);
    s->arm(s->cfg().idle_timeout);
    if (!resp && c.reused && a.rbuf.empty() && !s->upstream_timed_out) {
      s->upstream.close();
      allow_reuse = false;
      --round;
      continue;
    }
    allow_reuse = keep_upstream;
    std::optional<proto::body_framing> rframing;
    if (resp) {
      auto f = proto::response_body_framing(*resp, head.method);
      rframing = f.framing;
      if (!rframing) {
        error = make_error(pool::failure::http_protocol_error,
                           "exit " + exit_id + " sent a response with bad framing: " + f.error);
      }
    }
    if (!rframing) {
      // No usable answer (silence, garbage, hang-up) from a fresh connection. Try another
      // exit when nothing has reached the client and the request can be replayed.
      complete(answer_fault, error.kind);
      s->upstream.close();
      spdlog::debug("request to {} via exit {} failed: {}", host_key, exit_id, error.message);
      if (retry_on_ban && round < g.cfg.retries) {
        tried.push_back(&chosen);
        continue;
      }
      record.outcome = admin::outcome_of(error.kind);
      const std::string reply = error_reply(*s, error);
      co_await s->write_client(reply);
      co_return false;
    }
    a.resp = std::move(*resp);
    a.framing = *rframing;
    const auto ban = co_await judge_ban(s, a.resp, a.framing, a.rbuf);
    complete(pool::fault::none, pool::failure::none, a.resp.status, ban);
    if (ban) {
      spdlog::debug("exit {} banned for {} for {} s (status {})", exit_id, host_key, ban->count() / 1000,
                    a.resp.status);
      if (retry_on_ban && round < g.cfg.ban_retries) {
        tried.push_back(&chosen);
        a.upstream = std::move(s->upstream);
        a.reuse_key.clear();
        held = std::move(a);
        continue;
      }
    }
    a.upstream = std::move(s->upstream);
    co_return co_await forward_answer(s, std::move(a), keep_client, record);
  }
}

// ---- HTTP proxy front ----

awaitable<void> serve_http(std::shared_ptr<session> s) {
  for (bool first = true;; first = false) {
    if (first) {
      s->arm_deadline(s->cfg().handshake_timeout);
    } else {
      s->arm(s->cfg().idle_timeout);
    }
    proto::request_parse_result parsed;
    for (;;) {
      parsed = proto::parse_request_head(s->buf);
      if (parsed.status != proto::parse_status::incomplete) {
        break;
      }
      if (!first && s->buf.empty()) {
        // Between requests: wait for the next one under the idle limit, then the head's.
        s->between_requests = true;
        const bool more = co_await s->read_client();
        s->between_requests = false;
        if (!more) {
          co_return;
        }
        s->arm_deadline(s->cfg().handshake_timeout);
        continue;
      }
      if (!co_await s->read_client()) {
        if (s->timed_out && !s->buf.empty()) {
          spdlog::debug("client sent an incomplete request head before the deadline");
        }
        co_return;
      }
    }
    if (parsed.status == proto::parse_status::error) {
      if (first) {
        s->metrics().on_accept(s->protocol);
      }
      s->metrics().on_request(s->protocol, admin::request_outcome::client_error);
      {
        const std::string reply =
            error_reply(*s, make_error(pool::failure::bad_request, parsed.error, {}, parsed.error_status));
        co_await s->write_client(reply);
      }
      co_return;
    }
    s->buf.erase(0, parsed.consumed);
    if (first) {
      s->protocol = parsed.head.method == "CONNECT" ? admin::client_protocol::connect : admin::client_protocol::http;
      s->metrics().on_accept(s->protocol);
    }
    if (parsed.head.method == "CONNECT") {
      co_await handle_connect(s, std::move(parsed.head));
      co_return;
    }
    if (!co_await handle_forward(s, std::move(parsed.head))) {
      co_return;
    }
  }
}

// ---- SOCKS5 front ----

template <typename Parse>
awaitable<std::optional<std::invoke_result_t<Parse, std::string_view>>> read_socks(std::shared_ptr<session> s,
                                                                                   Parse parse) {
  for (;;) {
    auto r = parse(std::string_view(s->buf));
    if (r.st != socks5::status::incomplete) {
      if (r.st == socks5::status::complete) {
        s->buf.erase(0, r.consumed);
      }
      co_return r;
    }
    if (!co_await s->read_client()) {
      co_return std::nullopt;
    }
  }
}

awaitable<void> serve_socks5(std::shared_ptr<session> s) {
  auto& g = s->shard.shared;
  s->protocol = admin::client_protocol::socks5;
  s->metrics().on_accept(s->protocol);
  request_record record(*s);
  auto greeting = co_await read_socks(s, socks5::parse_greeting);
  if (!greeting) {
    co_return;
  }
  if (greeting->st == socks5::status::error) {
    spdlog::debug("bad SOCKS5 greeting: {}", greeting->error);
    {
      const std::string reply = socks5::make_method_choice(socks5::method::none_acceptable);
      co_await s->write_client(reply);
    }
    co_return;
  }
  auto offers = [&](std::uint8_t m) {
    return std::find(greeting->methods.begin(), greeting->methods.end(), m) != greeting->methods.end();
  };
  // Options travel in the username, so prefer username/password whenever offered.
  std::uint8_t method = offers(socks5::method::userpass)                       ? socks5::method::userpass
                        : (g.users.empty() && offers(socks5::method::no_auth)) ? socks5::method::no_auth
                                                                               : socks5::method::none_acceptable;
  const std::string choice = socks5::make_method_choice(method);
  if (!co_await s->write_client(choice) || method == socks5::method::none_acceptable) {
    co_return;
  }
  proto::route_params params;
  if (method == socks5::method::userpass) {
    auto up = co_await read_socks(s, socks5::parse_userpass);
    if (!up) {
      co_return;
    }
    if (up->st == socks5::status::error) {
      {
        const std::string reply = socks5::make_userpass_status(false);
        co_await s->write_client(reply);
      }
      co_return;
    }
    const auto creds = std::optional(std::pair{up->user, up->pass});
    auto auth = authenticate(g, creds);
    if (!auth.params) {
      spdlog::info("SOCKS5 authentication refused: {}", auth.error);
      {
        const std::string reply = socks5::make_userpass_status(false);
        co_await s->write_client(reply);
      }
      co_return;
    }
    if (auto busy = claim_user_slot(*s, auth.params->user); !busy.empty()) {
      spdlog::info("SOCKS5 connection refused: {}", busy);
      const std::string reply = socks5::make_userpass_status(false);
      co_await s->write_client(reply);
      co_return;
    }
    params = std::move(*auth.params);
    const std::string accepted = socks5::make_userpass_status(true);
    if (!co_await s->write_client(accepted)) {
      co_return;
    }
  }
  auto req = co_await read_socks(s, socks5::parse_request);
  if (!req) {
    co_return;
  }
  if (req->st == socks5::status::error) {
    {
      const std::string reply = socks5::make_reply(req->error_reply);
      co_await s->write_client(reply);
    }
    co_return;
  }
  if (req->cmd != socks5::command::connect) {
    {
      const std::string reply = socks5::make_reply(socks5::reply::command_not_supported);
      co_await s->write_client(reply);
    }
    co_return;
  }
  s->arm(clock::duration::zero());
  std::vector<const pool::exit*> tried;
  auto c = co_await connect_via_pool(s->shard, params, req->dst.host, req->dst.port, net::dial_mode::tunnel, tried);
  record.outcome = admin::outcome_of(c.error.kind);
  if (c.error) {
    spdlog::debug("SOCKS5 CONNECT {} failed: {}", proto::format_authority(req->dst.host, req->dst.port),
                  c.error.message);
    {
      const std::string reply = socks5::make_reply(c.socks);
      co_await s->write_client(reply);
    }
    co_return;
  }
  socks5::address bound;
  error_code ec;
  auto local = c.dial.upstream.socket().local_endpoint(ec);
  if (!ec && c.attempt.chosen().spec().scheme == proto::exit_scheme::direct) {
    bound.type = local.address().is_v4() ? socks5::address::kind::ipv4 : socks5::address::kind::ipv6;
    bound.host = local.address().to_string();
    bound.port = local.port();
  } else {
    bound.host = "0.0.0.0";
  }
  const std::string granted = socks5::make_reply(socks5::reply::succeeded, &bound);
  if (!co_await s->write_client(granted)) {
    co_return;
  }
  co_await relay_tunnel(s, std::move(c));
}

awaitable<void> serve(std::shared_ptr<session> s) {
  s->arm_deadline(s->cfg().handshake_timeout);
  if (!co_await s->read_client()) {
    co_return;
  }
  const auto first = static_cast<unsigned char>(s->buf.front());
  if (first == socks5::version) {
    co_await serve_socks5(s);
  } else if (first == 0x04) {
    // SOCKS4: answer "request rejected" in its own format rather than garbage.
    const char reject[8] = {0x00, 0x5b, 0, 0, 0, 0, 0, 0};
    {
      const std::string reply(reject, sizeof reject);
      co_await s->write_client(reply);
    }
  } else {
    co_await serve_http(s);
  }
}

}  // namespace

void close_idle_sessions() {
  for (auto* s = live_sessions; s != nullptr; s = s->next_live) {
    if (s->between_requests) {
      s->client.close();
    }
  }
}

// Over --max-connections: answer in the client's protocol, then close.
awaitable<void> refuse_overloaded(std::shared_ptr<session> s) {
  s->arm_deadline(s->cfg().handshake_timeout);
  if (!co_await s->read_client()) {
    co_return;
  }
  if (static_cast<unsigned char>(s->buf.front()) == socks5::version) {
    const std::string reply = socks5::make_method_choice(socks5::method::none_acceptable);
    co_await s->write_client(reply);
    co_return;
  }
  const std::string reply = error_reply(
      *s, make_error(pool::failure::overloaded,
                     fmt::format("too many client connections (--max-connections {})", s->cfg().max_connections), "1"));
  co_await s->write_client(reply);
}

awaitable<void> run_session(tcp::socket socket, shard_state& shard) {
  // TCP_NODELAY comes from the listening socket (accepted sockets inherit it on Linux).
  auto s = std::make_shared<session>(std::move(socket), shard);
  const int max = shard.shared.cfg.max_connections;
  if (max > 0 && s->open_connections > max) {
    co_await refuse_overloaded(s);
  } else {
    co_await serve(s);
  }
  if (!s->relay) {
    s->finish();
  }
}

}  // namespace exitpool::gateway
