#pragma once
// Exit selection: filters, rotation policies, sticky sessions, health and the
// exits already tried for this request. Pure decisions; time is an input.
// One selector per shard (it holds the round-robin cursor and the random
// generator): not thread-safe, no locks, no shared writes.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pool/pool.hpp"
#include "pool/state.hpp"

namespace exitpool::pool {

enum class policy { round_robin, random, least_inflight, fastest };
std::optional<policy> parse_policy(std::string_view name);
const char* policy_name(policy p);

struct pick_request {
  filter f;
  // Non-empty: sticky. The key (user + session id), its generation and anchor (the id
  // hash of the exit the session has; 0: none yet) from session_table.
  std::string_view sticky_key;
  std::uint64_t sticky_generation = 0;
  std::uint64_t sticky_anchor = 0;
  // Sticky and the anchored exit has no capacity now: move to another exit instead of
  // waiting for it (no_capacity with `wait` set).
  bool move_when_busy = false;
  // Exits already tried for this request (retries never reuse one).
  std::span<const exit* const> exclude;
  // Target host (lower-case, no port); empty: bans, per-host limits and tier memory
  // are not consulted.
  std::string_view host;
  // The shared state (bans, rate buckets, tier memory; see state.hpp). Not owned. Null:
  // no bans, no per-host limits, no tier memory; per-exit limits still apply.
  state* st = nullptr;
  // How long a probe claim lasts without an outcome (health_config::probe_timeout).
  std::chrono::milliseconds probe_timeout{std::chrono::seconds(30)};
};

enum class pick_error {
  none,
  no_match,     // no exit in the pool has the requested tags
  exhausted,    // exits match, but every one of them was already tried
  no_capacity,  // exits match and remain, but each is banned for the host, out of rate
                // tokens, at its concurrency cap or busy probing: wait until retry_at
};
const char* pick_error_name(pick_error e);

struct pick_result {
  exit* chosen = nullptr;
  pick_error error = pick_error::none;
  std::size_t matching = 0;  // exits matching the filter (for error messages)
  // no_capacity: the earliest time one of the blocked exits may have capacity again
  // (a token frees, a ban ends, a probe lapses; a concurrency cap is polled: now +
  // capacity_poll). Pick again then, or give up at the queue deadline.
  time_point retry_at{};
  std::size_t banned = 0;   // remaining exits banned for the host (for error messages)
  std::size_t limited = 0;  // remaining exits without a token, at the cap or busy probing
  int tier = 0;             // tier of the chosen exit
  // The chosen exit is probing and this request holds its probe slot: report the
  // outcome (or call exit::release_probe() if the request cannot tell).
  bool probe = false;
  // Sticky with an anchor. no_capacity because the session's own exit (session_exit)
  // is busy: why (retry_at is when it may have capacity). A choice other than the
  // anchored exit: why the session left it.
  session_wait wait = session_wait::none;
  session_move moved = session_move::none;
  exit* session_exit = nullptr;
  // The chosen exit is a provider line's virtual exit (a sticky session's anchor): keeps it
  // alive while the caller uses it (pool/elastic.hpp).
  std::shared_ptr<exit> keep;
};

// How long a caller waits before picking again when the only obstacle is a concurrency cap.
inline constexpr std::chrono::milliseconds capacity_poll{50};
// Bounded paths for large pools. With at least `fast_path_min` candidates in a
// single-tier pool, every policy first looks at a bounded number of exits and takes
// an eligible one (see selector::pick); only when that finds none does it fall back to
// classifying every candidate (exact, O(candidates), and the source of every error).
// Below the threshold the exact pass always runs.
inline constexpr std::size_t fast_path_min = 256;
// Round-robin: exits looked at from the cursor.
inline constexpr std::size_t fast_path_window = 64;
// random, least_inflight, fastest: uniform draws from the candidates.
inline constexpr std::size_t fast_path_draws = 64;
// least_inflight and fastest: eligible samples compared per pick (power of k choices).
inline constexpr std::size_t least_inflight_choices = 2;
inline constexpr std::size_t fastest_choices = 4;
// Sticky: rendezvous over windows of this many exits on the session's hash ring,
// up to `sticky_max_probe` exits.
inline constexpr std::size_t sticky_window = 32;
inline constexpr std::size_t sticky_max_probe = 256;

class selector {
 public:
  selector(policy p, std::uint64_t seed);

  // Chooses an exit matching r.f that is not in r.exclude.
  //
  // Every remaining match (matching, not excluded) is in one of three classes:
  //  - blocked: banned for r.host, no per-exit token, no per-exit-host token (all three
  //    read from r.st), at its concurrency cap, or probing with its
  //    probe slot taken. Limits and bans are hard: a blocked exit is never chosen.
  //  - down: in an ejection cool-down.
  //  - eligible: healthy, or probing with a free probe slot.
  // Eligible exits are chosen by tier: the lowest tier with an eligible exit wins
  // (starting at r.st's remembered tier for r.host; tiers below it are used only
  // when no tier at or above it has one), and the policy picks within that tier.
  // Tokens (per exit, then per exit and host) and the probe slot are taken only on
  // the chosen exit; if a racing shard took the last one, that exit counts as blocked
  // and the choice is made again. The concurrency cap is checked, not reserved (use
  // lease::try_acquire for an exact cap).
  // No eligible exit in any tier: the down exit whose cool-down ends first is chosen
  // anyway (panic fallback) — a pool in which everything looks dead is more often a
  // network blip than a dead pool. Nothing down either: pick_error::no_capacity with
  // retry_at.
  // Sticky requests with an anchor (the exit the session already has) are decided by
  // that exit alone when it is usable: taken when it has capacity, otherwise
  // pick_error::no_capacity with `wait` and retry_at — the session waits for its exit
  // instead of changing address (r.move_when_busy: it moves instead). An anchored exit
  // that is unusable (down, banned for the host, gone, excluded) is left: `moved` says
  // why, and the pick goes on as for a session without one.
  // Sticky requests without an anchor use rendezvous hashing (see sticky.hpp) within the
  // tier, whatever the policy: an exit that is banned, out of tokens, at its cap or
  // down falls to the session's next rendezvous choice.
  //   round_robin:    next matching exit after this shard's cursor
  //   random:         weighted by the exit's weight
  //   least_inflight: fewest in-flight leases (ties: random); power-of-two-choices
  //                   sampling when more than 64 exits match
  //   fastest:        lowest EWMA dial latency; exits without samples first; 5% random
  //                   exploration so slow exits are re-measured
  //
  // Large single-tier pools (>= fast_path_min candidates) take bounded paths first,
  // O(1) in the pool size; they choose only eligible exits, take tokens and probe slots
  // like the full pass, and fall back to it when they find nothing:
  //   round_robin:    the first eligible exit in a window from the cursor
  //   random:         rejection sampling: uniform draws, each kept with probability
  //                   weight / max_weight, first eligible one (same distribution)
  //   least_inflight: the less loaded of 2 eligible samples (power of two choices)
  //   fastest:        the lowest latency of 4 eligible samples; 5% one sample
  //   sticky:         rendezvous over a window of the session's hash ring (see
  //                   sticky_ring in selector.cpp): deterministic across shards and
  //                   gateways, an unusable exit moves only its own sessions, but the
  //                   session maps to another exit than the full rendezvous would.
  pick_result pick(const snapshot& s, const pick_request& r, time_point now);

  policy which() const { return policy_; }

 private:
  enum class cls : std::uint8_t { eligible, down, blocked };
  struct cand {
    exit* e;
    std::uint32_t pos;  // position in the candidate list (round-robin order)
    int tier;
    cls c;
    bool probing;
    bool banned;
    time_point free_at;  // blocked: when it may have capacity again
  };

  struct checks;
  // A candidate list of one snapshot sorted by exit id hash, for sticky picks on large
  // pools. Built on first use (O(n), ~10 ms per million exits on one shard).
  struct sticky_ring {
    std::uint64_t serial = 0;  // snapshot::serial()
    std::size_t size = 0;      // of the candidate list
    struct entry {
      std::uint64_t hash;  // the exit's id hash; entries ascending by it
      exit* e;             // owned by the snapshot
    };
    std::vector<entry> entries;      // a window is contiguous: one cache miss per 4 exits
    std::vector<double> weight;      // same order; empty when the pool's weights are uniform
    std::vector<std::uint32_t> dir;  // dir[b]: first entry with hash >> shift >= b
    int shift = 63;
    std::size_t lower_bound(std::uint64_t h) const;
  };

  // The anchored exit's decision (see pick); nullopt: the session leaves it (out.moved).
  std::optional<pick_result> pick_anchored(const snapshot& s, const checks& ck, pick_result& out);
  exit* pick_bounded(const snapshot& s, std::span<const std::uint32_t> cands, bool identity, const checks& ck,
                     bool& probe);
  exit* pick_sticky_bounded(const snapshot& s, std::span<const std::uint32_t> cands, const checks& ck,
                            std::uint64_t key_hash, bool& probe);
  const sticky_ring& ring_for(const snapshot& s, std::span<const std::uint32_t> cands);
  std::span<const std::uint32_t> matching_list(const snapshot& s, const filter& f,
                                               std::span<const std::uint32_t> cands);
  // A multi-tier pool's candidates that match `f`, split by tier (ascending); cached like
  // matching_list.
  const std::vector<std::pair<int, std::vector<std::uint32_t>>>& tier_lists(const snapshot& s, const filter& f,
                                                                            std::span<const std::uint32_t> cands);
  void forget_older_snapshots(const snapshot& s);
  // The key of matching_ and tiers_: the snapshot's serial and the filter's fields.
  const std::string& cache_key(const snapshot& s, const filter& f);

  policy policy_;
  std::uint64_t cursor_;
  std::mt19937_64 rng_;
  // Sticky rings by candidate list (its data pointer, checked against serial and size),
  // for the newest snapshot seen and the one before (requests still holding it).
  std::unordered_map<const std::uint32_t*, sticky_ring> rings_;
  // Filters with two or more fields: the candidates that match (the snapshot indexes one
  // field), by serial and filter, for the same two snapshots. Never dropped while their
  // snapshot is kept: rings_ is keyed by their addresses.
  struct matching_entry {
    std::uint64_t serial = 0;
    std::vector<std::uint32_t> list;
  };
  std::unordered_map<std::string, matching_entry> matching_;
  struct tiers_entry {
    std::uint64_t serial = 0;
    std::vector<std::pair<int, std::vector<std::uint32_t>>> lists;
  };
  std::unordered_map<std::string, tiers_entry> tiers_;
  std::string key_scratch_;
  std::uint64_t newest_serial_ = 0;
  // Per-pick scratch, kept to avoid allocating on every pick.
  std::vector<cand> scratch_;
  std::vector<std::uint64_t> hashes_;
  std::vector<time_point> times_;
};

}  // namespace exitpool::pool
