#pragma once
// The admin HTTP endpoint (`--admin ADDR`): GET /metrics (Prometheus text
// format 0.0.4), GET /exits (JSON, admin/exits_json.hpp), GET /healthz ("ok"),
// GET / (the dashboard page and its static files, admin/dashboard_assets.hpp) and
// GET /dashboard.json (what the page polls, admin/dashboard_json.hpp).
//
// A deliberately small HTTP/1.1 server: one request per connection
// (`Connection: close`), request head bounded in size and time, no request
// bodies. 404 for unknown paths, 405 for methods other than GET.
// With `users` non-empty, everything but /healthz (the dashboard included) requires `Authorization: Basic`
// credentials of one of them (401 with WWW-Authenticate otherwise); /healthz
// stays open so that load balancers and probes need no secret.
//
// Threading: run admin_listener and history_sampler on one io_context of their own (the
// gateway gives them a thread, "admin-0", so that rendering a big pool never stalls a
// shard's clients). Rendering reads the shards' metrics blocks and the exits' atomics
// without locks, and the ban table one stripe at a time. `ctx` must outlive the listener
// and its sessions.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "admin/history.hpp"
#include "admin/metrics.hpp"
#include "admin/reload_log.hpp"
#include "pool/pool.hpp"
#include "pool/source.hpp"
#include "pool/state.hpp"

namespace exitpool::admin {

struct admin_context {
  // The current pool snapshot (e.g. `[&g] { return g.pool.load(); }`). Must be
  // callable from the admin thread. May return null (rendered as an empty pool).
  std::function<std::shared_ptr<const pool::snapshot>()> snapshot;
  const metrics_registry* metrics = nullptr;  // null: no gateway counters, exits only
  const pool::state* bans = nullptr;          // null: no bans listed or counted
  const traffic_history* history = nullptr;   // null: the dashboard shows no history
  const reload_log* reloads = nullptr;        // null: no reload history
  // The pool's sources as they stand (listed by /exits, counted by /metrics); callable from
  // the admin thread. Empty: no sources shown.
  std::function<std::vector<pool::source_status>(pool::time_point now)> sources;
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  std::string state_backend;  // --state without credentials (redis://HOST:PORT/DB); "" in-process
  std::unordered_map<std::string, std::string> users;                 // user → password; empty: no auth
  std::chrono::milliseconds head_timeout{std::chrono::seconds(5)};    // whole request head
  std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};  // whole response
  std::size_t max_head_bytes = 8 * 1024;
};

// Accepts connections until the acceptor is closed or the coroutine is
// cancelled; each connection is served by its own coroutine on the acceptor's
// executor. Never throws on peer errors.
boost::asio::awaitable<void> admin_listener(boost::asio::ip::tcp::acceptor acceptor, admin_context& ctx);

// Records `metrics`' sums into `history` every `period` until cancelled (the
// dashboard's last hour). Run it on the admin listener's io_context: the history is
// read there without a lock. Costs one `aggregate` per period, nothing per request.
boost::asio::awaitable<void> history_sampler(traffic_history& history, const metrics_registry& metrics,
                                             std::chrono::milliseconds period = std::chrono::seconds(1));

// What the admin server answers to one request head, without any I/O (for
// tests and for reuse). `now` is passed to the renderers.
struct admin_response {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};
admin_response handle_admin_request(std::string_view method, std::string_view target, const std::string* authorization,
                                    const admin_context& ctx, pool::time_point now);

// The full HTTP/1.1 response bytes for `r` (Content-Length, Connection: close).
std::string serialize_admin_response(const admin_response& r);

}  // namespace exitpool::admin
