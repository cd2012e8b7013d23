#pragma once
// pool::state for a fleet of gateways sharing one Redis (`serve --state redis://...`).
//
// Nothing here is on the request path: every pool::state method answers from a local
// mirror (a pool::local_state for bans, tiers and health; a session table; token grants),
// and one background task on a thread of its own reconciles the mirror with Redis.
//
// Why a thread of its own rather than shard 0's loop: shard 0 carries clients and the
// admin endpoint; Redis round trips, Lua replies and the resync after a reconnect (every
// ban in force) would add their latency to shard 0's requests. One thread with its own
// io_context keeps the data plane unchanged and the sync code single-threaded.
//
// What is shared, and how (keys under "exitpool:", see redis_state.cpp for the scripts):
//  - bans per (exit, host) and ejections: written locally at once, queued, and published
//    by a script that also records them in a sorted set scored by their end (Redis time);
//    every gateway subscribes to the channel and applies them (within one tick, 20 ms, plus
//    a round trip), and reads both sets back after every (re)connect. Events are queued
//    while Redis is down (bounded) and published on reconnect.
//  - sticky sessions: a session's first use here claims its key (SET NX semantics in a
//    script, keyed by a hash of the session key) and adopts the fleet's generation, anchor
//    and remaining lifetime; an anchor change is a compare-and-set on the generation and is
//    published, so the session expires at the same moment everywhere.
//  - rate limits per exit and per (exit, host): GCRA in Redis (time from TIME) grants this
//    gateway a batch of tokens, batch = rate / 10 (100 ms worth; at least 1, at most 4096);
//    take_* spends the grant, an empty grant reads as "no token until the next refill"
//    (retry_at), and a take that leaves half a batch or less asks for the next one (so a busy
//    gateway is granted ahead and never waits for Redis). Unspent tokens are dropped 1 s
//    after the grant. The error this allows: Redis hands out at most rate * T + burst +
//    batch - 1 over a window T (the batch is granted ahead), and each gateway holds at most
//    1.5 batches granted before the window, so the fleet sends at most
//    rate * T + burst + (1.5 N + 1) * batch through one exit.
//  - concurrency per exit: each gateway's share, max(1, cap / N), with N the live gateways
//    (heartbeats, TTL 3 s). No per-request Redis traffic and nothing to leak: when a gateway
//    dies its heartbeat expires within 3 s and the others' shares grow. The cost: a share
//    one gateway does not use is not lent to another.
//  - fleet view: a heartbeat every second (a key with TTL 3 s and a sorted set of live
//    gateways); the fleet size N feeds the shares above and the fallback. A gateway that
//    joins (its first heartbeat) or leaves (on shutdown, after its drain: its leases are
//    back) publishes it, and every other gateway heartbeats at once, so shares follow a
//    join or a clean leave within a tick and a round trip. One that dies (kill -9) is
//    dropped when its heartbeat ends: the others heartbeat again at that moment (the
//    heartbeat answers when the next other gateway's ends), so within the TTL.
//  - origins: the bans and ejections in force remember which gateway decided them
//    (ban_origin, ejection_origin: /exits shows "local" or "fleet" and the gateway).
// Not shared: health verdicts other than ejections (failure counts, latency), tier memory,
// the exits' in-flight counts.
//
// Redis down or slow (a command not answered within 500 ms): the gateway keeps serving
// from the mirror; rate limits fall back to each exit's own bucket at rate / N (N: the last
// known fleet size), concurrency stays at its share; logged once; backend_up() false; the
// task reconnects with backoff (100 ms doubling to 2 s) and resynchronises. A Redis problem
// never fails a request.
//
// Threading: the pool::state methods may be called from any shard at once (striped locks,
// as in local_state). start() and the destructor: the main thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fleet/redis.hpp"
#include "pool/state.hpp"

namespace boost::asio {
class io_context;
}

namespace exitpool::fleet {

struct redis_state_config {
  redis_url url;
  std::string gateway_id;      // unique in the fleet (host:pid:listen)
  std::string gateway_info;    // shown by `exitpool fleet`
  pool::limits_config limits;  // the fleet-wide limits
  pool::health_config health;
  std::chrono::milliseconds tick{20};
  std::chrono::milliseconds command_timeout{500};
  std::chrono::milliseconds heartbeat_ttl{3000};
  // Gauges written by the sync thread (admin metrics); may be null.
  std::atomic<int>* up_gauge = nullptr;
  std::atomic<int>* fleet_gauge = nullptr;
};

// Redis key names (shared with `exitpool fleet`).
inline constexpr const char* key_fleet = "exitpool:fleet";        // zset: gateway id -> heartbeat end (ms)
inline constexpr const char* key_gateway = "exitpool:gw:";        // + id: info, TTL = heartbeat TTL
inline constexpr const char* key_bans = "exitpool:bans";          // zset: "exit\nhost" -> end (ms)
inline constexpr const char* key_ejections = "exitpool:ejected";  // zset: exit id -> end (ms)
inline constexpr const char* key_events = "exitpool:events";      // pub/sub channel

// The live gateways (id, info), read once (for `exitpool fleet`). Runs its own io_context.
struct fleet_member {
  std::string id;
  std::string info;
  long long expires_in_ms = 0;
};
std::vector<fleet_member> read_fleet(const redis_url& url, std::chrono::milliseconds timeout);

// One event on the channel, parsed (pure; see redis_state.cpp for the wire format).
struct fleet_event {
  enum class kind : std::uint8_t { ban, ejection, anchor, join, leave } type = kind::ban;
  std::string origin;  // gateway id (join, leave: the gateway that joined or left)
  long long remaining_ms = 0;
  std::string exit_id;           // ban, ejection
  std::string host;              // ban
  std::string session;           // anchor: the session key
  std::uint64_t generation = 0;  // anchor
  std::uint64_t anchor = 0;      // anchor: exit id hash
};
std::optional<fleet_event> parse_event(std::string_view payload);
// Token batch granted per refill at `rate` per second.
int grant_batch(double rate);

class redis_state final : public pool::state {
 public:
  redis_state(redis_state_config cfg, const pool::pool_holder& pool);
  ~redis_state() override;

  // Connects once (within 2 s) and starts the sync thread; when Redis answered, waits (up to
  // 2 s) for the first resynchronisation, so the gateway serves knowing the fleet size. A refused password or database
  // throws std::runtime_error (a configuration error: fix it, do not limp on). An unreachable
  // or silent Redis returns the reason, and the gateway starts degraded (local state,
  // limits / 1) while the thread keeps trying: a fleet must be able to restart while its
  // Redis is down.
  std::string start();

  bool backend_up() const { return up_.load(std::memory_order_relaxed); }
  int fleet_size() const { return fleet_.load(std::memory_order_relaxed); }

  pool::session_info session(std::string_view key, std::chrono::seconds ttl, pool::time_point now) override;
  void anchor_session(std::string_view key, std::uint64_t generation, std::uint64_t exit_hash) override;

  void ban(const pool::exit& e, std::string_view host, pool::time_point until) override;
  std::optional<pool::time_point> banned_until(const pool::exit& e, std::string_view host,
                                               pool::time_point now) const override {
    return local_.banned_until(e, host, now);
  }
  void banned_until_many(std::string_view host, std::uint64_t host_hash, std::span<const std::uint64_t> exit_hashes,
                         pool::time_point now, std::span<pool::time_point> out) const override {
    local_.banned_until_many(host, host_hash, exit_hashes, now, out);
  }
  pool::ban_index bans_by_exit(pool::time_point now) const override { return local_.bans_by_exit(now); }
  std::size_t ban_count(pool::time_point now) const override { return local_.ban_count(now); }

  pool::time_point exit_token_at(const pool::exit& e, pool::time_point now) const override;
  bool take_exit_token(pool::exit& e, pool::time_point now) override;
  void refund_exit_token(pool::exit& e) override;

  bool host_rate_limited() const override { return cfg_.limits.per_exit_host_rate > 0; }
  pool::time_point host_token_at(const pool::exit& e, std::string_view host, pool::time_point now) const override;
  void host_token_at_many(std::string_view host, std::uint64_t host_hash, std::span<const std::uint64_t> exit_hashes,
                          pool::time_point now, std::span<pool::time_point> out) const override;
  bool take_host_token(const pool::exit& e, std::string_view host, pool::time_point now) override;
  void refund_host_token(const pool::exit& e, std::string_view host) override;

  pool::lease try_acquire(pool::exit& e) override { return pool::lease::try_acquire(e); }
  void report(pool::exit& e, const pool::outcome& o, pool::time_point now) override;

  std::optional<int> start_tier(std::string_view host, pool::time_point now) const override {
    return local_.start_tier(host, now);
  }
  void record_tier(std::string_view host, int tier, pool::time_point now) override {
    local_.record_tier(host, tier, now);
  }
  void sweep(pool::time_point now) override;

  std::string ban_origin(const pool::exit& e, std::string_view host, pool::time_point now) const override;
  std::string ejection_origin(const pool::exit& e, pool::time_point now) const override;

  // Redis commands sent so far (both connections).
  std::uint64_t commands_sent() const { return commands_.load(std::memory_order_relaxed); }

 private:
  struct grant {
    int tokens = 0;
    std::int64_t valid_until_ns = 0;  // tokens unspent by then are dropped
    std::int64_t next_ns = 0;         // when Redis said the next token may be granted
    std::int64_t last_use_ns = 0;
    bool wanted = false;
  };
  struct grant_key {
    std::uint64_t exit_hash = 0;
    std::uint64_t host_hash = 0;  // 0: the exit's own limit
    bool operator==(const grant_key&) const = default;
  };
  struct grant_key_hash {
    std::size_t operator()(const grant_key& k) const;
  };
  struct alignas(64) grant_stripe {
    std::mutex mu;
    std::unordered_map<grant_key, grant, grant_key_hash> map;
  };
  // A queued write for Redis (bans, ejections, session claims and anchors).
  struct outbound {
    enum class kind : std::uint8_t { ban, ejection, claim, anchor } type = kind::ban;
    std::string exit_id;
    std::string text;  // host (ban) or session key (claim, anchor)
    std::int64_t until_ns = 0;
    std::uint64_t generation = 0;
    std::uint64_t anchor = 0;
    std::int64_t ttl_ms = 0;
  };
  class sync;  // the background task (redis_state.cpp)
  // Who decided a ban or an ejection that came from another gateway, and when it ends.
  struct origin_mark {
    std::string gateway;
    std::int64_t until_ns = 0;
  };

  void mark_remote_ban(const pool::exit& e, std::string_view host, const std::string& gateway, pool::time_point until,
                       pool::time_point now);
  void mark_remote_ejection(const pool::exit& e, const std::string& gateway, pool::time_point until);
  // Leaves the live set (ZREM, DEL, a leave event) on a connection of its own; at shutdown.
  void leave(std::chrono::milliseconds timeout);

  grant_stripe& stripe_of(const grant_key& k) const;
  int batch_of(const grant_key& k) const;
  pool::time_point token_at(const grant_key& k, pool::time_point now) const;
  bool take(const grant_key& k, pool::time_point now);
  void refund(const grant_key& k);
  void enqueue(outbound o);
  std::shared_ptr<pool::host_limits> fallback_hosts() const { return fallback_hosts_.load(); }

  redis_state_config cfg_;
  const pool::pool_holder& pool_;
  pool::local_state local_;  // bans, tiers, health (and the host buckets are unused)
  pool::session_table sessions_;
  mutable std::array<grant_stripe, 64> grants_;
  std::atomic<std::shared_ptr<pool::host_limits>> fallback_hosts_;  // per-host limits while down
  mutable std::mutex origins_mu_;                                   // remote bans and ejections (rare; admin reads)
  std::unordered_map<std::string, origin_mark> ban_origins_;        // "exit id\nhost"
  std::unordered_map<std::string, origin_mark> eject_origins_;      // exit id
  std::mutex queue_mu_;  // shards push rare events (bans, ejections, new sessions); the sync drains
  std::deque<outbound> queue_;
  std::atomic<bool> up_{false};
  std::atomic<int> fleet_{1};
  std::atomic<std::uint64_t> commands_{0};
  std::atomic<bool> stopping_{false};
  std::unique_ptr<sync> sync_;
  std::thread thread_;
};

}  // namespace exitpool::fleet
