#include "admin/server.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <optional>

#include "admin/dashboard_assets.hpp"
#include "admin/dashboard_json.hpp"
#include "admin/exits_json.hpp"
#include "admin/prometheus.hpp"
#include "proto/base64.hpp"
#include "proto/http_head.hpp"
#include "proto/text.hpp"

namespace exitpool::admin {

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;
constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

admin_response text(int status, std::string body) {
  admin_response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

// True when `authorization` carries Basic credentials of one of `users`.
bool authorized(const std::string* authorization, const std::unordered_map<std::string, std::string>& users) {
  if (authorization == nullptr) {
    return false;
  }
  std::string_view v = *authorization;
  if (v.size() < 6 || !proto::iequals(v.substr(0, 6), "basic ")) {
    return false;
  }
  v.remove_prefix(6);
  while (!v.empty() && v.front() == ' ') {
    v.remove_prefix(1);
  }
  auto decoded = proto::base64_decode(v);
  if (!decoded) {
    return false;
  }
  auto colon = decoded->find(':');
  if (colon == std::string::npos) {
    return false;
  }
  auto it = users.find(decoded->substr(0, colon));
  return it != users.end() && proto::constant_time_equal(it->second, std::string_view(*decoded).substr(colon + 1));
}

// Closes the socket when the deadline passes first; returns the operation's result otherwise.
template <typename Op>
asio::awaitable<std::tuple<error_code, std::size_t>> with_deadline(asio::steady_timer& timer, Op op) {
  auto r = co_await (std::move(op) || timer.async_wait(nothrow_awaitable));
  if (r.index() == 0) {
    co_return std::get<0>(r);
  }
  co_return std::tuple{error_code(asio::error::timed_out), std::size_t{0}};
}

asio::awaitable<void> admin_session(tcp::socket sock, admin_context& ctx) {
  asio::steady_timer timer(sock.get_executor());
  timer.expires_after(ctx.head_timeout);
  std::string buf;
  proto::head_limits limits;
  limits.max_head_bytes = ctx.max_head_bytes;
  limits.max_line_bytes = std::min(limits.max_line_bytes, ctx.max_head_bytes);
  proto::request_parse_result parsed;
  for (;;) {
    parsed = proto::parse_request_head(buf, limits);
    if (parsed.status != proto::parse_status::incomplete) {
      break;
    }
    if (buf.size() > ctx.max_head_bytes) {
      parsed.status = proto::parse_status::error;
      parsed.error_status = 431;
      parsed.error = "request head too large";
      break;
    }
    std::size_t old = buf.size();
    buf.resize(old + 2048);
    auto [ec, n] =
        co_await with_deadline(timer, sock.async_read_some(asio::buffer(buf.data() + old, 2048), nothrow_awaitable));
    buf.resize(old + n);
    if (ec == asio::error::timed_out && n == 0) {
      // Answer a slow client rather than dropping it silently, when it sent something.
      if (!buf.empty()) {
        parsed.status = proto::parse_status::error;
        parsed.error_status = 408;
        parsed.error = "request head not received in time";
        break;
      }
      co_return;
    }
    if (n == 0 && ec) {
      co_return;  // client went away
    }
  }

  admin_response resp;
  if (parsed.status == proto::parse_status::error) {
    resp = text(parsed.error_status ? parsed.error_status : 400, parsed.error + "\n");
  } else {
    std::string auth;
    const auto* h = proto::find_header(parsed.head.headers, "Authorization");
    if (h != nullptr) {
      auth = h->value;
    }
    resp = handle_admin_request(parsed.head.method, parsed.head.target, h ? &auth : nullptr, ctx, pool::clock::now());
  }
  const std::string out = serialize_admin_response(resp);
  timer.expires_after(ctx.write_timeout);
  co_await with_deadline(timer, asio::async_write(sock, asio::buffer(out), nothrow_awaitable));
  error_code ec;
  sock.shutdown(tcp::socket::shutdown_send, ec);
  sock.close(ec);
}

void log_exception(std::exception_ptr e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("admin: request ended by an unexpected exception: {}", ex.what());
  }
}

}  // namespace

admin_response handle_admin_request(std::string_view method, std::string_view target, const std::string* authorization,
                                    const admin_context& ctx, pool::time_point now) {
  const auto question = target.find('?');
  std::string_view path = target.substr(0, question);
  const std::string_view query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
  const dashboard_asset* asset = find_dashboard_asset(path);
  const bool known =
      path == "/metrics" || path == "/exits" || path == "/healthz" || path == "/dashboard.json" || asset != nullptr;
  if (!known) {
    return text(404, "not found: try / (the dashboard), /metrics, /exits or /healthz\n");
  }
  if (method != "GET") {
    auto r = text(405, "only GET is allowed here\n");
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  if (path == "/healthz") {
    return text(200, "ok\n");
  }
  if (!ctx.users.empty() && !authorized(authorization, ctx.users)) {
    auto r = text(401, "authentication required\n");
    r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"exitpool admin\", charset=\"UTF-8\"");
    return r;
  }
  if (asset != nullptr) {
    admin_response r;
    r.content_type = std::string(asset->content_type);
    r.body = std::string(asset->body);
    r.headers.emplace_back("Cache-Control", "no-cache");
    // The page loads only its own files and data; nothing inline, nothing from elsewhere.
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return r;
  }
  auto snap = ctx.snapshot ? ctx.snapshot() : nullptr;
  if (!snap) {
    snap = pool::snapshot::build({});
  }
  const auto sources = ctx.sources ? ctx.sources(now) : std::vector<pool::source_status>{};
  admin_response r;
  if (path == "/metrics") {
    static const metrics_registry empty;
    r.content_type = std::string(prometheus_content_type);
    r.body = render_prometheus(ctx.metrics ? *ctx.metrics : empty, *snap, now, ctx.bans, sources);
  } else if (path == "/dashboard.json") {
    std::optional<metrics_totals> totals;
    if (ctx.metrics != nullptr) {
      totals = aggregate(*ctx.metrics);
    }
    dashboard_inputs in;
    in.snap = snap.get();
    in.now = now;
    in.bans = ctx.bans;
    in.totals = totals ? &*totals : nullptr;
    in.history = ctx.history;
    in.reloads = ctx.reloads;
    in.wall_now = std::chrono::system_clock::now();
    in.started = ctx.started;
    in.state_backend = ctx.state_backend;
    if (ctx.metrics != nullptr) {
      in.backend_up = ctx.metrics->state_backend_up.load(std::memory_order_relaxed) != 0;
      in.fleet_gateways = ctx.metrics->fleet_gateways.load(std::memory_order_relaxed);
    }
    r.content_type = "application/json";
    r.body = render_dashboard_json(in, parse_dashboard_query(query));
  } else {
    r.content_type = "application/json";
    r.body = render_exits_json(*snap, now, ctx.bans, sources);
  }
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

std::string serialize_admin_response(const admin_response& r) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", r.status, proto::reason_phrase(r.status));
  out += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\n", r.content_type, r.body.size());
  for (const auto& [k, v] : r.headers) {
    out += k + ": " + v + "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  out += r.body;
  return out;
}

asio::awaitable<void> history_sampler(traffic_history& history, const metrics_registry& metrics,
                                      std::chrono::milliseconds period) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    history.record(sample_of(aggregate(metrics), std::chrono::steady_clock::now()));
    // Fixed-rate ticks: a late wake-up does not shift every later sample.
    next += period;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) {
      next = now + period;  // the thread was held up: no burst of catch-up samples
    }
    t.expires_at(next);
    auto [ec] = co_await t.async_wait(nothrow_awaitable);
    if (ec) {
      co_return;
    }
  }
}

asio::awaitable<void> admin_listener(tcp::acceptor acceptor, admin_context& ctx) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(nothrow_awaitable);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        co_return;
      }
      spdlog::warn("admin: accept failed: {}", ec.message());
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await t.async_wait(nothrow_awaitable);
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), admin_session(std::move(sock), ctx), log_exception);
  }
}

}  // namespace exitpool::admin
