#pragma once
// One way to drive the pool: ask for an exit, get an attempt; complete the attempt
// with one outcome. The gateway (serve), fetch and the health checks use this and
// nothing else; outside src/pool/ no code takes leases, probe slots or tokens, or
// reports health, bans and tiers itself.
//
//   driver::begin(snapshot, request, now)  ->  an attempt | retry at T | a refusal
//   attempt::complete(outcome, now)        ->  health (passive check, probe slot, the
//                                              fastest policy's latency), ban for the host,
//                                              tier memory, and the observer (metrics),
//                                              all in one place
//   ~attempt                               ->  the lease (in-flight count, concurrency
//                                              cap) and an unreported probe slot go back
//
// The shape follows load balancers' outlier detection (Envoy's putResult: each use of
// a host reports one result, whose origin — local connect failure or the upstream's
// answer — decides what it says about the host): an outcome says *who* failed (the
// exit, the target, the client) and whether traffic went through the exit; only the
// exit's own failures count against it.
//
// Threading: a driver belongs to one shard (it owns that shard's selector): call it
// from that shard only. An attempt may be completed or destroyed on any thread (its
// effects go to the shared state, which is thread-safe). Time is always an input.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "pool/clock.hpp"
#include "pool/failure.hpp"
#include "pool/pool.hpp"
#include "pool/selector.hpp"
#include "pool/state.hpp"

namespace exitpool::pool {

// Who made an attempt fail.
enum class fault : std::uint8_t {
  none,    // nobody: the attempt did what was asked
  exit,    // the exit itself (refused, timed out, bad handshake, garbage from a proxy)
  target,  // the target (refused, unreachable, timed out behind a working exit)
  client,  // the client went away or sent something unusable
};

struct attempt_outcome {
  fault who = fault::none;
  failure error = failure::none;  // what went wrong; none on success
  // Traffic went through the exit (its handshake completed, or a response came back
  // through it): the exit did its part, whatever the target did.
  bool connected = false;
  // Latency sample for the exit (dial: connect + proxy handshake; for a forwarded
  // request through an HTTP proxy exit, until its response head). Negative: no sample
  // (a reused connection).
  std::chrono::microseconds latency{-1};
  int status = 0;  // forwarded requests: the response status (0: none)
  // The ban policy's verdict (ban_policy::judge): ban the exit for the host this long.
  std::optional<std::chrono::milliseconds> ban;
};

// What a completion did, for whoever counts (per-shard metrics): called on the thread
// that completes the attempt.
class attempt_observer {
 public:
  virtual ~attempt_observer() = default;
  virtual void on_attempt(const exit& e, const attempt_outcome& o) = 0;
  // A sticky request found its session's exit busy and waits for it (once per request:
  // not for the picks it makes while queued).
  virtual void on_session_wait(session_wait /*why*/) {}
  // A sticky session left the exit it had for another one.
  virtual void on_session_move(session_move /*why*/) {}
};

class driver;

// An exit granted to one request. Move-only; empty when default-constructed.
class attempt {
 public:
  attempt() = default;
  attempt(attempt&& o) noexcept;
  attempt& operator=(attempt&& o) noexcept;
  attempt(const attempt&) = delete;
  attempt& operator=(const attempt&) = delete;
  ~attempt() { release(); }

  explicit operator bool() const { return exit_ != nullptr; }
  exit& chosen() const { return *exit_; }
  int tier() const { return tier_; }
  bool completed() const { return completed_; }
  // The provider line behind a virtual exit; null for an ordinary exit.
  exit* line() const { return line_; }
  // The snapshot the exit came from (kept alive by the attempt).
  const std::shared_ptr<const snapshot>& snap() const { return snap_; }

  // Records the outcome (see the header). Once: later calls are ignored. The lease is
  // kept until release() or destruction (a tunnel holds its exit until it closes).
  void complete(const attempt_outcome& o, time_point now);
  // Gives the lease back; a probe slot the attempt still holds (never completed) is freed.
  void release();

 private:
  friend class driver;
  state* st_ = nullptr;
  attempt_observer* observer_ = nullptr;
  std::shared_ptr<const snapshot> snap_;
  exit* exit_ = nullptr;
  lease lease_;
  // A provider line's attempt (pool/elastic.hpp): exit_ is the virtual exit, kept alive
  // here; line_ is the line, whose lease (max_sessions=) is held too and which hears the
  // same health reports; probe_on_ is the exit whose probe slot the attempt holds.
  std::shared_ptr<exit> virtual_;
  exit* line_ = nullptr;
  lease line_lease_;
  exit* probe_on_ = nullptr;
  std::string host_own_;   // the host, when the attempt keeps its own copy
  std::string_view host_;  // host_own_, or the caller's (attempt_request::host_outlives_attempt)
  int tier_ = 0;
  bool probe_ = false;  // holds the exit's probe slot
  bool completed_ = false;
  bool owns_host_ = false;
};

// What a request asks of the pool.
struct attempt_request {
  filter f;
  // Non-empty: sticky (the same exit for this key while it is usable). Its lifetime
  // from first use is sticky_ttl. While the session's exit is usable but busy, begin
  // refuses with no_capacity and `wait` set (the caller queues as for any no_capacity),
  // unless move_when_busy.
  std::string_view sticky_key;
  std::chrono::seconds sticky_ttl{std::chrono::minutes(10)};
  bool move_when_busy = false;
  // The caller already waited for this request (no_capacity before): a session wait is
  // counted once per request.
  bool queued = false;
  // Sticky without a lifetime (sticky_ttl is unused): the key's generation stays 0 and
  // its anchor is kept for the whole run. fetch --session-per-host: one exit per host,
  // waited for while busy, left only when unusable (as for any session).
  bool sticky_forever = false;
  // Target host (lower-case, no port); empty: no bans, host limits or tier memory.
  std::string_view host;
  // The caller keeps host's characters alive and unchanged until the attempt is released
  // or destroyed (fetch: the job owns both): the attempt refers to them instead of
  // copying, so granting allocates nothing.
  bool host_outlives_attempt = false;
  // Exits already tried by this request: never granted again.
  std::span<const exit* const> exclude;
};

struct begin_result {
  attempt granted;  // set on success
  // no_match, exhausted or no_capacity otherwise; client_limit when the request's sticky
  // session cannot be kept (the session table is full: sticky.hpp).
  failure refused = failure::none;
  // no_capacity: ask again at retry_at (or give up at the caller's queue deadline).
  time_point retry_at{};
  std::size_t matching = 0;  // exits matching the filter
  std::size_t banned = 0;    // of those remaining, banned for the host
  std::size_t limited = 0;   // ... without a token, at their cap or busy probing
  // no_capacity for a sticky request whose session's exit is busy: why, and that exit
  // (owned by the snapshot the caller passed; valid while the caller holds it).
  session_wait wait = session_wait::none;
  const exit* session_exit = nullptr;
};

class driver {
 public:
  // `st` and `observer` (may be null) must outlive the driver and its attempts.
  driver(policy p, std::uint64_t seed, state& st, std::chrono::milliseconds probe_timeout,
         attempt_observer* observer = nullptr);

  // Chooses an exit for `r` (selector::pick), takes its tokens, probe slot and lease.
  // `snap` is kept alive by the attempt.
  begin_result begin(std::shared_ptr<const snapshot> snap, const attempt_request& r, time_point now);

  // An attempt on one given exit (active health checks): no selection, tokens or
  // lease. Refused (empty) while the exit is in its cool-down, or probing with the
  // probe slot held by someone else; a probing exit's slot is taken.
  attempt check(std::shared_ptr<const snapshot> snap, exit& e, time_point now);

  state& shared() const { return st_; }
  policy which() const { return selector_.which(); }

 private:
  // The virtual exit a pick of the provider line `line` runs on (pool/elastic.hpp), with
  // its tokens taken; null with `out` set to the refusal when the line has none for `r`.
  std::shared_ptr<exit> materialize(const snapshot& snap, exit& line, const attempt_request& r,
                                    const session_info& session, time_point now, begin_result& out);

  selector selector_;
  std::uint64_t rotation_state_;  // splitmix64 state: fresh provider session numbers
  state& st_;
  std::chrono::milliseconds probe_timeout_;
  attempt_observer* observer_;
};

}  // namespace exitpool::pool
