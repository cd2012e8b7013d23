#pragma once
// Gateway settings, from the command line or a TOML config file (same names).

#include <chrono>
#include <string>
#include <vector>

#include "gateway/acl.hpp"
#include "net/dns_cache.hpp"
#include "pool/pool.hpp"
#include "pool/rate_limit.hpp"
#include "pool/selector.hpp"

namespace exitpool::gateway {

struct config {
  std::string listen = "127.0.0.1:8080";
  int threads = 0;  // 0: one per hardware thread
  pool::policy policy = pool::policy::round_robin;
  std::string users_file;  // empty: no authentication
  int retries = 2;         // further exits tried after a failed dial
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds dial_timeout{std::chrono::seconds(10)};
  // Direct exits, targets with several addresses: the head start of each connection attempt
  // before the next address is tried beside it (RFC 8305; net/happy_eyeballs.hpp).
  std::chrono::milliseconds happy_eyeballs_delay{250};
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(300)};
  // Plain HTTP: from the request sent to the exit until its response head. Past it the
  // exit counts as failed and an idempotent body-less request moves to another exit.
  std::chrono::milliseconds response_timeout{std::chrono::seconds(30)};
  int session_minutes = 10;  // default sticky lifetime
  // A sticky session whose exit is busy moves to another exit instead of waiting for it
  // (--session-busy move; per request sessbusy-move).
  bool session_move_when_busy = false;
  bool allow_open = false;  // allow a non-loopback listener without --users
  // Sticky ports (gateway/port_map.hpp), as given: "10001-10100:country=us". Each port
  // listens on --listen's address and is its own sticky session.
  std::vector<std::string> port_maps;
  // Client networks (CIDR) let in without credentials (--allow-client); with no users,
  // a client off the list is refused.
  std::vector<std::string> allow_clients;
  std::string admin_listen;  // --admin ADDR:PORT; empty: no admin endpoint
  std::string ca_file;       // extra CA bundle for verifying https:// exits
  bool watch = false;        // reload when a pool file changes (SIGHUP always reloads)
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(30)};  // SIGTERM: wait this long for sessions
  pool::health_config health;
  pool::limits_config limits;
  // No exit with capacity (rate, concurrency, bans): wait up to this long, then 503.
  std::chrono::milliseconds queue_timeout{std::chrono::seconds(10)};
  // Ban detection on plain-HTTP responses: these statuses, or a body/header match of
  // any pattern (ECMAScript regex), ban (exit, target host) for ban_duration, or for
  // the response's Retry-After when it has one.
  std::vector<int> ban_statuses{403, 407, 429, 503};
  std::vector<std::string> ban_patterns;
  std::chrono::milliseconds ban_duration{std::chrono::minutes(5)};
  int ban_retries = 2;  // further exits tried for an idempotent request after a ban
  // Access control (see gateway/acl.hpp): allowed target ports, denied networks.
  std::string allow_ports{default_allowed_ports};
  std::vector<std::string> deny;  // CIDRs, in addition to the defaults
  bool no_default_deny = false;   // drop the built-in denied networks
  // Resource bounds; 0 = unlimited.
  int max_connections = 0;           // client connections, all shards together
  int max_connections_per_user = 0;  // per authenticated user (with --users)
  int queue_max = 10000;             // requests waiting for an exit with capacity
  // Active health checks (gateway/health.hpp): every exit probed every check_interval
  // (0 = off), within check_timeout each; a GET of check_url through the exit, or
  // (empty) a handshake with the exit alone.
  std::chrono::milliseconds check_interval{std::chrono::seconds(30)};
  std::string check_url;
  std::chrono::milliseconds check_timeout{std::chrono::seconds(5)};
  // Provider lines (pool/elastic.hpp): GET check_url once through each new sticky virtual
  // exit and keep the IP the target saw (family::learn), for /exits.
  bool learn_exit_ip = false;
  // Each shard's resolver (net/resolver.hpp): servers, TTL bounds, lookup timeout, cache size.
  net::dns::config dns;
  // Shared state for a fleet (fleet/redis_state.hpp): redis://HOST:PORT[/DB]; empty: in-process.
  std::string state_url;
  std::string state_password;  // overrides a password in the URL; never logged
};

}  // namespace exitpool::gateway
