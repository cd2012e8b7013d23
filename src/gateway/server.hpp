#pragma once
// The gateway server: shared state, one listener per shard (SO_REUSEPORT), and
// the accept loops that start a session per connection on the accepting shard.

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "admin/metrics.hpp"
#include "gateway/acl.hpp"
#include "gateway/admission.hpp"
#include "gateway/auth.hpp"
#include "gateway/config.hpp"
#include "gateway/pool_sources.hpp"
#include "gateway/port_map.hpp"
#include "gateway/upstream_pool.hpp"
#include "net/resolver.hpp"
#include "net/splice.hpp"
#include "pool/attempt.hpp"
#include "pool/ban_policy.hpp"
#include "pool/pool.hpp"
#include "pool/state.hpp"

namespace exitpool::gateway {

// Shared by every shard. Immutable after start, except the pool (atomic swap), the
// exits' atomic stats, and the shared pool state (sessions, bans, rate buckets, tier
// memory: pool/state.hpp, thread-safe).
struct shared_state {
  shared_state(config c, std::shared_ptr<const pool::snapshot> snap,
               std::unordered_map<std::string, std::string> user_passwords);
  config cfg;
  pool::pool_holder pool;
  // Where the pool comes from (--pool: files and URLs); null: the embedded default pool.
  std::shared_ptr<pool_sources> sources;
  user_table users;  // user → password; empty: no auth
  // The state seam: in-process (pool::local_state); a fleet backend plugs in here.
  std::unique_ptr<pool::state> state;
  pool::ban_policy ban_policy;        // from cfg.ban_statuses, ban_patterns, ban_duration
  std::atomic<bool> draining{false};  // SIGTERM seen: no new keep-alive rounds
  access_policy acl;
  std::vector<port_map> port_maps;  // from cfg.port_maps
  std::vector<cidr> allow_clients;  // from cfg.allow_clients; empty: no allowlist
  std::atomic<int> connections{0};  // open client connections, all shards
  std::atomic<int> queued{0};       // requests waiting for capacity, all shards
  // Open connections per user (keys fixed at startup: lock-free lookups).
  user_counters user_connections;
  boost::asio::ssl::context tls_verified;
  boost::asio::ssl::context tls_insecure;
};

// What a session owns on its shard: the shared state and this shard's pool driver
// (its selector). Observes the attempts it completes for this shard's metrics.
struct shard_state final : pool::attempt_observer {
  shard_state(shared_state& s, std::uint64_t seed, int i)
      : shared(s), driver(s.cfg.policy, seed, *s.state, s.cfg.health.probe_timeout, this), index(i) {}
  void on_attempt(const pool::exit& e, const pool::attempt_outcome& o) override;
  void on_session_wait(pool::session_wait why) override;
  void on_session_move(pool::session_move why) override;
  shared_state& shared;
  pool::driver driver;
  int index;
  admin::shard_metrics* metrics = nullptr;  // this shard's block: written only by this shard
  upstream_pool idle_upstreams;             // kept-alive upstream connections of this shard
  net::pipe_pool body_pipes;                // empty pipes for the next spliced plain-HTTP body
  std::atomic<int> active_sessions{0};      // written by the shard, read by the main thread when draining
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor;  // closed on the shard's thread to stop accepting
  std::unique_ptr<net::resolver> resolver;  // this shard's names (targets of direct and socks5:// exits)
  // The --port-map ports this shard listens on (each port on one shard), with their
  // options; built before the shard starts, never resized (sessions point into them).
  struct mapped_port {
    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor;
    proto::route_params options;
  };
  std::vector<std::unique_ptr<mapped_port>> mapped_ports;
};

// Collects the pool from its sources (files read again, each URL source's last good list:
// gateway/pool_sources.hpp) and swaps the snapshot in. Exits whose line did not change keep
// their state; removed exits stay alive for the tunnels still using them. The one way the
// pool changes: SIGHUP, --watch and a URL source's refresh all call this.
// On error the old pool keeps serving and the error ("FILE:LINE: ...") is returned.
// With `metrics`, the reload is counted and its duration kept (exitpool_pool_reload_seconds).
// Main thread (or any thread that is not a shard: a big pool takes a second or so).
std::string reload_pool(shared_state& shared, admin::metrics_registry* metrics = nullptr);

// The fleet backend for cfg.state_url (fleet/redis_state.hpp), started; its gauges go to
// `metrics`. Throws std::runtime_error on a bad URL or a refused password/database.
std::unique_ptr<pool::state> make_fleet_state(shared_state& shared, admin::metrics_registry& metrics);

// Loads a users file: `user:password` per line, `#` comments. Throws
// std::runtime_error("FILE:LINE: message") on a bad line.
std::unordered_map<std::string, std::string> load_users(const std::string& path);

// Parses "host:port", "[v6]:port". Throws std::invalid_argument.
boost::asio::ip::tcp::endpoint parse_listen(const std::string& text);

// Runs the gateway until SIGINT/SIGTERM. Throws on startup errors (bind, ...).
// `on_ready` is called once every listener is bound.
// `sources` (null: the embedded pool) made `snap`; the server refreshes and reloads from them.
int run_server(config cfg, std::shared_ptr<pool_sources> sources, std::shared_ptr<const pool::snapshot> snap,
               std::unordered_map<std::string, std::string> users, const std::function<void(int threads)>& on_ready);

}  // namespace exitpool::gateway
