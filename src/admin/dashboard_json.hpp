#pragma once
// `/dashboard.json`: everything the dashboard page (`/`, admin/dashboard/index.html)
// shows, in one document the page polls. Pure function of its inputs (no I/O, no clock
// read): any thread. Exit URLs are redacted (exits_json): no password is ever output.
//
// Shape:
//   {"now_unix", "uptime_s",
//    "filter": {"country", "state", "tag"},
//    "pool": {"exits" (all), "matching", "listed", "by_state": {state: n}, "by_country": {cc|"-": n},
//             "by_tier": {tier: n}, "countries": [all countries of the pool], "tags": [all tag keys]},
//    "exits": [exit_json (admin/exits_json.hpp), the first `limit` matching, pool order],
//    "traffic": {"requests", "errors", "by_outcome": {outcome: n}, "bytes_up", "bytes_down", "active_tunnels",
//                "dial_attempts", "dial_failures", "bans", "active_bans"},
//    "rates": {"window_s", "requests_per_s", "errors_per_s", "bytes_up_per_s", "bytes_down_per_s"},
//    "history": {"step_s", "span_s", "steps": [[seconds_ago, seconds, requests, errors, bytes_up, bytes_down,
//                bans], ...] oldest first},
//    "top_ban_hosts": [{"host", "exits"}] (bans in force among the listed exits, most banned first, 10 at most),
//    "reloads": [{"at_unix", "ok", "exits", "seconds", "what"}] newest first,
//    "fleet": {"shared" (false: in-process state), "backend" (redis://HOST:PORT/DB, no credentials; null
//              when not shared), "backend_up", "gateways" (live, this one included)}}
// `by_*` count the matching exits; "by_state" always has healthy, ejected and probing.
// Cost: one pass over the pool's atomics and two walks of the ban table (bans by exit, count).

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "admin/history.hpp"
#include "admin/metrics.hpp"
#include "admin/reload_log.hpp"
#include "pool/pool.hpp"
#include "pool/state.hpp"

namespace exitpool::admin {

// What the page asks for: ?country=us&state=ejected&tag=type=isp&limit=200.
struct dashboard_query {
  std::string country;  // "" any; "-": untagged
  std::string state;    // "" any; healthy, ejected, probing
  std::string tag;      // "" any; KEY=VALUE (a tag of the exit), or text found in its id or a tag value
  std::size_t limit = 1000;
};

// Parses a query string (the part after '?'), percent-decoding values; unknown keys are
// ignored, a bad limit keeps the default. `limit` is clamped to 1..100000.
dashboard_query parse_dashboard_query(std::string_view query);

// Whether `e` (in `state` at the time of rendering) matches `q`'s filters.
bool dashboard_matches(const dashboard_query& q, const pool::exit& e, pool::exit_state state);

struct dashboard_inputs {
  const pool::snapshot* snap = nullptr;      // required
  pool::time_point now{};                    // the exits' clock (states, cool-downs, bans)
  const pool::state* bans = nullptr;         // null: no bans
  const metrics_totals* totals = nullptr;    // null: no gateway counters
  const traffic_history* history = nullptr;  // null: no history or rates
  const reload_log* reloads = nullptr;       // null: no reloads
  std::chrono::system_clock::time_point wall_now{};
  std::chrono::system_clock::time_point started{};
  // --state: the backend without credentials ("" in-process), whether it answers, and the
  // live gateways of the fleet (fleet/redis_state.hpp writes the last two into the metrics).
  std::string state_backend;
  bool backend_up = true;
  int fleet_gateways = 1;
};

std::string render_dashboard_json(const dashboard_inputs& in, const dashboard_query& q);

}  // namespace exitpool::admin
