#include "pool/selector.hpp"

// Why one file over 600 lines: the pick is one algorithm. Its plain, sticky (anchored) and
// large-pool (bounded ring) paths share the same candidate checks (state, bans, rate,
// concurrency, probe slots) and must agree on them; kept together so that a change to one
// check is seen in every path.

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <tuple>
#include <utility>

#include "pool/sticky.hpp"

namespace exitpool::pool {

namespace {

constexpr std::size_t p2c_threshold = 64;  // least_inflight samples two above this many usable exits
constexpr double explore_probability = 0.05;

bool contains(std::span<const exit* const> set, const exit* e) {
  return std::find(set.begin(), set.end(), e) != set.end();
}

int set_fields(const filter& f) {
  // state and asn are not indexed: any of them means the candidates must be checked.
  return static_cast<int>(!f.country.empty()) + static_cast<int>(!f.city.empty()) + static_cast<int>(!f.type.empty()) +
         (f.state.empty() && f.asn.empty() ? 0 : 2);
}

double weight_of(const exit& e) {
  return std::max(e.spec().weight, 0.0);
}

std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {  // uniform in [0, bound)
  return std::uniform_int_distribution<std::uint64_t>(0, bound - 1)(rng);
}

// [0, bound) by multiply-shift (Lemire): no division on the bounded paths. Its bias,
// under bound / 2^64, is far below anything a pool of exits can show.
std::size_t fast_below(std::mt19937_64& rng, std::size_t bound) {
  return static_cast<std::size_t>((static_cast<unsigned __int128>(rng()) * bound) >> 64);
}

// A pick without shared state: no bans, no per-host limits, no tier memory (its tables
// stay empty: the selector only reads them); per-exit limits live on the exits.
local_state& no_shared_state() {
  static local_state none;
  return none;
}

}  // namespace

// The per-exit rules of a pick, one exit at a time: what the bounded paths check on
// each exit they look at, and what every path takes on the exit it chooses.
struct selector::checks {
  const pick_request& r;
  state& st;
  time_point now;
  bool all_match;  // the candidate list holds only matching exits
  bool check_bans;
  bool check_host_rate;

  // The full pass's classification of one exit, answering only "eligible?": matching,
  // not excluded, healthy or probing with a free probe slot, and not blocked (banned for
  // the host, no token, no host token, at its cap). nullopt: skip it (the full pass, if
  // reached, classifies it properly); otherwise whether it is probing.
  std::optional<bool> eligible(const exit& e) const {
    if ((!all_match && !r.f.matches(e)) || contains(r.exclude, &e) || e.at_concurrency_cap() ||
        st.exit_token_at(e, now) > now) {
      return std::nullopt;
    }
    const exit_state state = e.state(now);
    if (state == exit_state::ejected ||
        (state == exit_state::probing && e.probe_busy_until(now, r.probe_timeout).has_value())) {
      return std::nullopt;
    }
    // The shared tables last: each lookup may take the host's stripe lock.
    if ((check_bans && st.banned_until(e, r.host, now).has_value()) ||
        (check_host_rate && !e.elastic() && st.host_token_at(e, r.host, now) > now)) {
      return std::nullopt;
    }
    return state == exit_state::probing;
  }

  // Takes what the chosen exit needs: its probe slot (when probing), a token, a token
  // for the host. All or nothing: when a racing shard took the last of one, what was
  // taken is given back and the result is when the exit may have capacity again.
  std::optional<time_point> take(exit& e, bool probing) const {
    if (probing && !e.try_claim_probe(now, r.probe_timeout)) {
      return e.probe_busy_until(now, r.probe_timeout).value_or(now + capacity_poll);
    }
    auto undo_probe = [&] {
      if (probing) {
        e.release_probe();
      }
    };
    if (!st.take_exit_token(e, now)) {
      undo_probe();
      return st.exit_token_at(e, now);
    }
    // A provider line's host limits are its virtual exits' (pool/elastic.hpp).
    if (check_host_rate && !e.elastic() && !st.take_host_token(e, r.host, now)) {
      st.refund_exit_token(e);  // this pick took it a moment ago and gives up the exit
      undo_probe();
      return st.host_token_at(e, r.host, now);
    }
    return std::nullopt;
  }
};

std::optional<policy> parse_policy(std::string_view name) {
  if (name == "round_robin" || name == "round-robin" || name == "rr") {
    return policy::round_robin;
  }
  if (name == "random") {
    return policy::random;
  }
  if (name == "least_inflight" || name == "least-inflight") {
    return policy::least_inflight;
  }
  if (name == "fastest") {
    return policy::fastest;
  }
  return std::nullopt;
}

const char* pick_error_name(pick_error e) {
  switch (e) {
    case pick_error::none:
      return "none";
    case pick_error::no_match:
      return "no_match";
    case pick_error::exhausted:
      return "exhausted";
    case pick_error::no_capacity:
      return "no_capacity";
  }
  return "unknown";
}

const char* policy_name(policy p) {
  switch (p) {
    case policy::round_robin:
      return "round_robin";
    case policy::random:
      return "random";
    case policy::least_inflight:
      return "least_inflight";
    case policy::fastest:
      return "fastest";
  }
  return "unknown";
}

selector::selector(policy p, std::uint64_t seed) : policy_(p), cursor_(seed), rng_(seed) {}

pick_result selector::pick(const snapshot& s, const pick_request& r, time_point now) {
  const auto cands = s.candidates(r.f);
  const auto& exits = s.exits();
  const std::size_t n = cands.size();
  // With at most one field set, the candidates are that field's index list: all match.
  const bool all_match = set_fields(r.f) <= 1;
  const bool sticky = !r.sticky_key.empty();
  const bool by_host = !r.host.empty();
  state& st = r.st != nullptr ? *r.st : no_shared_state();
  const bool check_bans = by_host && r.st != nullptr;
  const bool check_host_rate = by_host && st.host_rate_limited();
  const checks ck{r, st, now, all_match, check_bans, check_host_rate};
  const std::uint64_t key_hash = sticky ? mix64(hash64(r.sticky_key), r.sticky_generation) : 0;

  pick_result out;

  // ---- 0. a session's own exit ----
  if (sticky && r.sticky_anchor != 0) {
    if (auto decided = pick_anchored(s, ck, out)) {
      return *decided;
    }
  }

  // ---- 0b. bounded paths for large pools ----
  // The full pass below classifies every candidate: O(pool) per pick, ~0.1 s at a
  // million exits. Each policy only needs some eligible exit of its liking, so look at a
  // bounded number first (see pick_bounded, pick_sticky_bounded). With tiers, only the
  // tier the full pass would choose from is sampled: the first tier, from the host's
  // remembered one up, that has matching exits. When nothing eligible turns up, the full
  // pass decides (a lower tier's exhaustion, errors and panic included).
  if (n >= fast_path_min) {
    // Sampling and the sticky ring work on the exits that match: with two or more filter
    // fields or several tiers, a list of them built once per snapshot and filter (round-robin
    // keeps its window over the candidates, which checks filter::matches as it goes).
    std::span<const std::uint32_t> list = cands;
    checks bounded = ck;
    bool identity = r.f.empty();
    if (!s.single_tier()) {
      const std::optional<int> start = by_host && r.st != nullptr ? r.st->start_tier(r.host, now) : std::nullopt;
      list = {};
      for (const auto& [tier, members] : tier_lists(s, r.f, cands)) {
        if (!start || tier >= *start) {
          list = members;
          break;
        }
      }
      bounded.all_match = true;
      identity = false;
    } else if (!all_match && (sticky || policy_ != policy::round_robin)) {
      list = matching_list(s, r.f, cands);
      bounded.all_match = true;
    }
    bool probe = false;
    exit* e = nullptr;
    if (list.size() >= fast_path_min) {
      e = sticky ? pick_sticky_bounded(s, list, bounded, key_hash, probe)
                 : pick_bounded(s, list, identity, bounded, probe);
    }
    if (e != nullptr) {
      out.chosen = e;
      out.tier = e->tier();
      out.probe = probe;
      out.matching = n;  // not counted on this path
      return out;
    }
  }

  // ---- 1. classify every remaining match: eligible, down or blocked (one pass) ----
  scratch_.clear();
  for (std::size_t pos = 0; pos < n; ++pos) {
    exit& e = *exits[cands[pos]];
    if (!all_match && !r.f.matches(e)) {
      continue;
    }
    ++out.matching;
    if (contains(r.exclude, &e)) {
      continue;
    }
    scratch_.push_back({&e, static_cast<std::uint32_t>(pos), e.tier(), cls::eligible, false, false, now});
  }
  if (out.matching == 0) {
    out.error = pick_error::no_match;
    return out;
  }
  if (scratch_.empty()) {
    out.error = pick_error::exhausted;
    return out;
  }

  auto block = [](cand& c, time_point until) {
    c.free_at = c.c == cls::blocked ? std::max(c.free_at, until) : until;
    c.c = cls::blocked;
  };

  const std::uint64_t host_hash = by_host ? hash64(r.host) : 0;
  if (check_bans || check_host_rate) {
    // One batch lookup per table: the host's stripe is locked once, not once per exit.
    hashes_.clear();
    for (const cand& c : scratch_) {
      hashes_.push_back(c.e->id_hash());
    }
    times_.resize(hashes_.size());
    if (check_bans) {
      st.banned_until_many(r.host, host_hash, hashes_, now, times_);
      for (std::size_t i = 0; i < scratch_.size(); ++i) {
        if (times_[i] != time_point::min()) {
          block(scratch_[i], times_[i]);
          scratch_[i].banned = true;
        }
      }
    }
    if (check_host_rate) {
      st.host_token_at_many(r.host, host_hash, hashes_, now, times_);
      for (std::size_t i = 0; i < scratch_.size(); ++i) {
        if (times_[i] > now) {
          block(scratch_[i], times_[i]);
        }
      }
    }
  }
  for (cand& c : scratch_) {
    exit& e = *c.e;
    if (const auto at = st.exit_token_at(e, now); at > now) {
      block(c, at);
    }
    if (e.at_concurrency_cap()) {
      block(c, now + capacity_poll);
    }
    switch (e.state(now)) {
      case exit_state::healthy:
        break;
      case exit_state::probing:
        c.probing = true;
        if (auto busy = e.probe_busy_until(now, r.probe_timeout)) {
          block(c, *busy);
        }
        break;
      case exit_state::ejected:
        if (c.c == cls::eligible) {
          c.c = cls::down;
        }
        break;
    }
  }

  // ---- 2. take what the chosen exit needs; a race lost makes it blocked ----
  auto commit = [&](cand& c) {
    if (auto until = ck.take(*c.e, c.probing)) {
      block(c, *until);
      return false;
    }
    return true;
  };
  auto success = [&](const cand& c) {
    out.chosen = c.e;
    out.tier = c.tier;
    out.probe = c.probing;
    return out;
  };

  auto below = [this](std::uint64_t bound) { return uniform_below(rng_, bound); };

  // The policy's choice among the candidates for which in(c) holds (at least one).
  auto choose = [&](auto&& in) -> cand* {
    cand* chosen = nullptr;
    if (sticky) {
      // Rendezvous: every shard and every gateway with the same pool agrees, and only
      // the sessions of an exit that becomes unusable move.
      double best_score = -1;
      for (cand& c : scratch_) {
        if (!in(c)) {
          continue;
        }
        const double score = rendezvous_score(key_hash, c.e->id_hash(), weight_of(*c.e));
        if (score > best_score) {
          best_score = score;
          chosen = &c;
        }
      }
      return chosen;
    }
    std::size_t count = 0;
    double total_weight = 0;
    for (const cand& c : scratch_) {
      if (in(c)) {
        ++count;
        total_weight += weight_of(*c.e);
      }
    }
    switch (policy_) {
      case policy::round_robin: {
        // The first candidate at or after this shard's cursor, wrapping around.
        const std::size_t start = cursor_ % n;
        std::size_t best = n;
        for (cand& c : scratch_) {
          const std::size_t d = (c.pos + n - start) % n;
          if (in(c) && d < best) {
            best = d;
            chosen = &c;
          }
        }
        cursor_ = chosen->pos + 1;
        return chosen;
      }
      case policy::random: {
        // Where a uniform draw over the total weight lands; a weight-free pool
        // degrades to uniform.
        const bool uniform = !(total_weight > 0);
        double target =
            uniform ? static_cast<double>(below(count)) : std::uniform_real_distribution<double>(0, total_weight)(rng_);
        for (cand& c : scratch_) {
          if (!in(c)) {
            continue;
          }
          chosen = &c;  // the last one absorbs rounding
          target -= uniform ? 1.0 : weight_of(*c.e);
          if (target < 0) {
            break;
          }
        }
        return chosen;
      }
      case policy::least_inflight: {
        if (count > p2c_threshold) {
          // Power of two choices: every shard racing for the single global minimum
          // would herd onto it before the in-flight counts catch up.
          const std::uint64_t a = below(count);
          std::uint64_t b = below(count - 1);
          b += b >= a ? 1 : 0;
          cand* first = nullptr;
          cand* second = nullptr;
          std::uint64_t k = 0;
          for (cand& c : scratch_) {
            if (!in(c)) {
              continue;
            }
            first = k == a ? &c : first;
            second = k == b ? &c : second;
            ++k;
          }
          return second->e->inflight() < first->e->inflight() ? second : first;
        }
        int best = std::numeric_limits<int>::max();
        std::uint64_t ties = 0;
        for (cand& c : scratch_) {
          if (!in(c)) {
            continue;
          }
          const int load = c.e->inflight();
          if (load < best) {
            best = load;
            chosen = &c;
            ties = 1;
          } else if (load == best && below(++ties) == 0) {
            chosen = &c;  // reservoir sampling: uniform among the ties
          }
        }
        return chosen;
      }
      case policy::fastest: {
        double best = std::numeric_limits<double>::infinity();
        std::uint64_t ties = 0;
        for (cand& c : scratch_) {
          if (!in(c)) {
            continue;
          }
          const double latency = c.e->ewma_latency_us();  // -1 when unmeasured: those first
          if (latency < best) {
            best = latency;
            chosen = &c;
            ties = 1;
          } else if (latency == best && below(++ties) == 0) {
            chosen = &c;
          }
        }
        if (count > 1 && std::bernoulli_distribution(explore_probability)(rng_)) {
          // Exploration: re-measure the others now and then.
          std::uint64_t k = below(count);
          for (cand& c : scratch_) {
            if (in(c) && k-- == 0) {
              chosen = &c;
              break;
            }
          }
        }
        return chosen;
      }
    }
    return chosen;
  };

  // ---- 3. the lowest tier with an eligible exit (from the remembered tier up first) ----
  const std::optional<int> start = by_host && r.st != nullptr ? r.st->start_tier(r.host, now) : std::nullopt;
  for (;;) {
    std::optional<int> lowest;
    std::optional<int> lowest_from_start;
    for (const cand& c : scratch_) {
      if (c.c != cls::eligible) {
        continue;
      }
      if (!lowest || c.tier < *lowest) {
        lowest = c.tier;
      }
      if (start && c.tier >= *start && (!lowest_from_start || c.tier < *lowest_from_start)) {
        lowest_from_start = c.tier;
      }
    }
    if (!lowest) {
      break;
    }
    const int tier = lowest_from_start ? *lowest_from_start : *lowest;
    cand* c = choose([tier](const cand& x) { return x.c == cls::eligible && x.tier == tier; });
    if (commit(*c)) {
      return success(*c);
    }
  }

  // ---- 4. panic fallback: the down exit back soonest (sticky: ties by score) ----
  for (;;) {
    cand* best = nullptr;
    double best_score = -1;
    for (cand& c : scratch_) {
      if (c.c != cls::down) {
        continue;
      }
      const double score = sticky ? rendezvous_score(key_hash, c.e->id_hash(), weight_of(*c.e)) : 0.0;
      if (best == nullptr || c.e->down_until() < best->e->down_until() ||
          (sticky && c.e->down_until() == best->e->down_until() && score > best_score)) {
        best = &c;
        best_score = score;
      }
    }
    if (best == nullptr) {
      break;
    }
    if (commit(*best)) {
      return success(*best);
    }
  }

  // ---- 5. everything blocked: when to try again ----
  out.error = pick_error::no_capacity;
  out.retry_at = time_point::max();
  for (const cand& c : scratch_) {
    out.retry_at = std::min(out.retry_at, c.free_at);
    out.banned += c.banned ? 1 : 0;
    out.limited += c.banned ? 0 : 1;
  }
  return out;
}

// ---- sticky anchors ---------------------------------------------------------------------------

// A session keeps its exit while the exit is usable: for a logged-in account or a cart, a
// change of address is worse than a short wait. So the anchored exit is checked first and
// alone; only its being unusable (not merely busy) sends the pick on to the others.
std::optional<pick_result> selector::pick_anchored(const snapshot& s, const checks& ck, pick_result& out) {
  const pick_request& r = ck.r;
  const time_point now = ck.now;
  exit* e = s.find_hash(r.sticky_anchor);
  if (e == nullptr && !s.elastic().empty()) {
    out.keep = s.find_virtual(r.sticky_anchor, now);  // a provider line's virtual exit
    e = out.keep.get();
  }
  if (e == nullptr || !r.f.matches(*e)) {
    out.moved = session_move::removed;
    return std::nullopt;
  }
  if (contains(r.exclude, e)) {
    out.moved = session_move::dial_failed;
    return std::nullopt;
  }
  const exit_state health = e->state(now);
  // A virtual exit shares its provider line's health and limits (pool/elastic.hpp).
  exit* line = e->parent();
  // Probing with the probe slot taken: the exit has not shown it recovered yet.
  if (health == exit_state::ejected || (line != nullptr && line->state(now) == exit_state::ejected) ||
      (health == exit_state::probing && e->probe_busy_until(now, r.probe_timeout).has_value())) {
    out.moved = session_move::ejected;
    return std::nullopt;
  }
  if (ck.check_bans && ck.st.banned_until(*e, r.host, now).has_value()) {
    out.moved = session_move::banned;
    return std::nullopt;
  }
  // Usable. Busy, and why (the first limit that holds it back)?
  auto busy = [&]() -> std::pair<session_wait, time_point> {
    for (exit* x : {e, line}) {
      if (x == nullptr) {
        continue;
      }
      if (const auto at = ck.st.exit_token_at(*x, now); at > now) {
        return {session_wait::rate_limit, at};
      }
      if (x->at_concurrency_cap()) {
        return {session_wait::concurrency, now + capacity_poll};
      }
    }
    if (ck.check_host_rate) {
      if (const auto at = ck.st.host_token_at(*e, r.host, now); at > now) {
        return {session_wait::host_rate_limit, at};
      }
    }
    return {session_wait::none, now};
  };
  auto [why, free_at] = busy();
  if (why == session_wait::none) {
    const bool probing = health == exit_state::probing;
    const auto until = ck.take(*e, probing);
    if (!until) {
      if (line != nullptr) {
        // Its token was free a moment ago (busy()); a racing shard may take it first, and
        // the line then goes one request over its rate= for that moment.
        ck.st.take_exit_token(*line, now);
      }
      out.chosen = e;
      out.tier = e->tier();
      out.probe = probing;
      out.matching = 1;  // not counted on this path
      return out;
    }
    // A racing shard took its last token or its probe slot.
    std::tie(why, free_at) = busy();
    if (why == session_wait::none) {
      why = session_wait::concurrency;
    }
    free_at = std::max(free_at, *until);
  }
  if (r.move_when_busy) {
    out.moved = session_move::busy;
    return std::nullopt;
  }
  out.error = pick_error::no_capacity;
  out.retry_at = free_at;
  out.wait = why;
  out.session_exit = e;
  out.matching = 1;
  out.limited = 1;
  return out;
}

// ---- bounded paths for large pools ----------------------------------------------------------

// round_robin: the first eligible exit in a window from the cursor.
// random, least_inflight, fastest: uniform draws from the candidate list; a draw that is
// not eligible (or, for weighted random, rejected) is skipped. The first `choices`
// eligible samples are compared and the best one is taken:
//  - random (1 choice): the first eligible draw. Rejection sampling, so the result is
//    uniform over the eligible exits, exactly as the full pass; with weights each draw is
//    kept with probability weight / max_weight, which makes it proportional to weight.
//    (An alias table would avoid the rejections but costs O(n) memory per candidate
//    list and shard, and the eligible set changes from pick to pick anyway.)
//  - least_inflight (2): power of two choices, as nginx `random two least_conn` and
//    Envoy's least-request balancer do: the load stays within a small additive gap of
//    the least loaded exit, and shards do not herd onto one global minimum.
//  - fastest (4, or 1 for the 5% exploration): latency, unlike in-flight load, does not
//    rise as an exit is used, so a few more samples buy a faster exit while the load
//    still spreads over many fast exits instead of the single fastest one.
// Draws are with replacement (a repeat of the best sample is skipped); at a million
// exits a draw is a few cache misses. When `fast_path_draws` draws find too few eligible
// exits, the best one found is still taken; none at all: the full pass decides.
exit* selector::pick_bounded(const snapshot& s, std::span<const std::uint32_t> cands, bool identity, const checks& ck,
                             bool& probe) {
  const auto& exits = s.exits();
  const std::size_t n = cands.size();
  if (policy_ == policy::round_robin) {
    std::size_t pos = cursor_ % n;
    for (std::size_t k = 0; k < fast_path_window; ++k, pos = pos + 1 == n ? 0 : pos + 1) {
      exit& e = *exits[cands[pos]];
      const auto probing = ck.eligible(e);
      if (!probing || ck.take(e, *probing)) {
        continue;
      }
      cursor_ = pos + 1;
      probe = *probing;
      return &e;
    }
    return nullptr;
  }

  const bool weighted = policy_ == policy::random && !s.uniform_weight();
  std::size_t choices = 1;
  if (policy_ == policy::least_inflight) {
    choices = least_inflight_choices;
  } else if (policy_ == policy::fastest) {
    choices = std::bernoulli_distribution(explore_probability)(rng_) ? 1 : fastest_choices;
  }
  auto better = [this](const exit& a, const exit& b) {
    if (policy_ == policy::least_inflight) {
      return a.inflight() < b.inflight();
    }
    return a.ewma_latency_us() < b.ewma_latency_us();  // unmeasured (negative) first
  };
  exit* best = nullptr;
  bool best_probing = false;
  std::size_t found = 0;
  // At a million exits a draw is dependent cache and TLB misses: the candidate list
  // (skipped for the list of every exit, where position i holds exit i), the snapshot's
  // exit pointer, the exit's counters. The `choices` draws a pick compares are made
  // together and each level is prefetched for all of them, so their misses overlap.
  const std::size_t batch_size = choices;
  std::array<std::uint32_t, fastest_choices> drawn{};
  std::array<exit*, fastest_choices> batch{};
  for (std::size_t draw = 0; draw < fast_path_draws; draw += batch_size) {
    for (std::size_t i = 0; i < batch_size; ++i) {
      drawn[i] = static_cast<std::uint32_t>(fast_below(rng_, n));
      if (!identity) {
        __builtin_prefetch(&cands[drawn[i]]);
      }
    }
    for (std::size_t i = 0; i < batch_size; ++i) {
      drawn[i] = identity ? drawn[i] : cands[drawn[i]];
      __builtin_prefetch(&exits[drawn[i]]);
    }
    for (std::size_t i = 0; i < batch_size; ++i) {
      batch[i] = exits[drawn[i]].get();
      batch[i]->prefetch();
    }
    for (std::size_t i = 0; i < batch_size; ++i) {
      exit* e = batch[i];
      if (weighted && !(std::uniform_real_distribution<double>(0, s.max_weight())(rng_) < weight_of(*e))) {
        continue;
      }
      const auto probing = ck.eligible(*e);
      if (!probing || e == best) {
        continue;
      }
      if (best == nullptr || better(*e, *best)) {
        best = e;
        best_probing = *probing;
      }
      if (++found < choices) {
        continue;
      }
      if (!ck.take(*best, best_probing)) {
        probe = best_probing;
        return best;
      }
      best = nullptr;  // a racing shard took its last token or probe slot: sample again
      found = 0;
    }
  }
  if (best != nullptr && !ck.take(*best, best_probing)) {
    probe = best_probing;
    return best;
  }
  return nullptr;
}

// Sticky on a large pool. Full rendezvous scores every candidate: O(n). Instead the
// candidates are placed on a ring by their id hash (sticky_ring, built once per snapshot
// and candidate list), the session's key hash is a point on it, and rendezvous runs over
// the `sticky_window` exits that follow the point; if none of them is eligible, over the
// next window, up to `sticky_max_probe` exits; then the full pass decides.
// What it keeps:
//  - every shard and every gateway with the same pool computes the same exit: the ring
//    depends only on the exits' id hashes (not on the order of the pool file);
//  - an exit that is banned, over a limit or down moves only its own sessions (to their
//    next choice in the same window), and they come back when it recovers;
//  - a reload that keeps most exits moves few sessions: an exit added or removed only
//    touches the windows that contain it. Trade-off against full rendezvous: such a
//    change also shifts its windows by one exit, so about twice as many sessions move
//    (2/n per exit instead of 1/n), and the load per exit varies with the ring's gaps,
//    smoothed over the window (spread about 1/sqrt(window), ~18%, instead of ~0).
//  - weights: exits weigh in within their window (weighted rendezvous scores).
// A session maps to another exit than the full rendezvous would, so a pool that grows
// across fast_path_min moves its sessions once.
exit* selector::pick_sticky_bounded(const snapshot& s, std::span<const std::uint32_t> cands, const checks& ck,
                                    std::uint64_t key_hash, bool& probe) {
  const sticky_ring& ring = ring_for(s, cands);
  const std::size_t size = ring.entries.size();
  const std::size_t start = ring.lower_bound(key_hash);
  const std::size_t limit = std::min(size, sticky_max_probe);
  std::array<double, sticky_window> score{};
  for (std::size_t first = 0; first < limit; first += sticky_window) {
    const std::size_t count = std::min(sticky_window, limit - first);
    auto at = [&](std::size_t i) {  // start < size and first + i < limit <= size: no division
      const std::size_t k = start + first + i;
      return k >= size ? k - size : k;
    };
    for (std::size_t i = 0; i < count; i += 4) {  // the window's cache lines, all at once
      __builtin_prefetch(&ring.entries[at(i)]);
    }
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t k = at(i);
      // Uniform weights: the rendezvous score is monotonic in the mixed hash, so rank by
      // its top 53 bits and skip the logarithm.
      score[i] = ring.weight.empty() ? static_cast<double>(mix64(key_hash, ring.entries[k].hash) >> 11)
                                     : rendezvous_score(key_hash, ring.entries[k].hash, ring.weight[k]);
    }
    // Best first; usually the first is eligible, so select rather than sort.
    for (std::size_t tried = 0; tried < count; ++tried) {
      std::size_t best = count;
      for (std::size_t i = 0; i < count; ++i) {
        if (score[i] >= 0 && (best == count || score[i] > score[best])) {
          best = i;
        }
      }
      exit& e = *ring.entries[at(best)].e;
      score[best] = -1;  // scores are >= 0
      const auto probing = ck.eligible(e);
      if (probing && !ck.take(e, *probing)) {
        probe = *probing;
        return &e;
      }
    }
  }
  return nullptr;
}

std::size_t selector::sticky_ring::lower_bound(std::uint64_t h) const {
  const std::uint64_t b = h >> shift;
  std::size_t k = dir[b];
  while (k < dir[b + 1] && entries[k].hash < h) {
    ++k;
  }
  return k == entries.size() ? 0 : k;  // past the largest hash: wrap around the ring
}

void selector::forget_older_snapshots(const snapshot& s) {
  if (s.serial() > newest_serial_) {
    // A newer snapshot: keep what was built for the one it replaces (requests in flight
    // may still pick from it), drop what is older.
    std::erase_if(rings_, [this](const auto& kv) { return kv.second.serial < newest_serial_; });
    std::erase_if(matching_, [this](const auto& kv) { return kv.second.serial < newest_serial_; });
    std::erase_if(tiers_, [this](const auto& kv) { return kv.second.serial < newest_serial_; });
    newest_serial_ = s.serial();
  }
}

const std::string& selector::cache_key(const snapshot& s, const filter& f) {
  forget_older_snapshots(s);
  const std::uint64_t serial = s.serial();
  key_scratch_.assign(reinterpret_cast<const char*>(&serial), sizeof serial);
  for (const std::string* field : {&f.country, &f.city, &f.type, &f.state, &f.asn}) {
    key_scratch_ += '\0';
    key_scratch_ += *field;
  }
  return key_scratch_;
}

std::span<const std::uint32_t> selector::matching_list(const snapshot& s, const filter& f,
                                                       std::span<const std::uint32_t> cands) {
  const std::string& key = cache_key(s, f);
  auto [it, inserted] = matching_.try_emplace(key);
  if (inserted) {
    // O(candidates) once per snapshot, filter and shard; bounded by the distinct filters
    // clients use, each a subset of one tag index list.
    it->second.serial = s.serial();
    for (const std::uint32_t i : cands) {
      if (f.matches(*s.exits()[i])) {
        it->second.list.push_back(i);
      }
    }
  }
  return it->second.list;
}

const std::vector<std::pair<int, std::vector<std::uint32_t>>>& selector::tier_lists(
    const snapshot& s, const filter& f, std::span<const std::uint32_t> cands) {
  const std::string& key = cache_key(s, f);
  auto [it, inserted] = tiers_.try_emplace(key);
  if (inserted) {
    // O(candidates) once per snapshot, filter and shard, like matching_list.
    it->second.serial = s.serial();
    std::map<int, std::vector<std::uint32_t>> by_tier;
    for (const std::uint32_t i : cands) {
      const exit& e = *s.exits()[i];
      if (f.matches(e)) {
        by_tier[e.tier()].push_back(i);
      }
    }
    it->second.lists.assign(std::make_move_iterator(by_tier.begin()), std::make_move_iterator(by_tier.end()));
  }
  return it->second.lists;
}

const selector::sticky_ring& selector::ring_for(const snapshot& s, std::span<const std::uint32_t> cands) {
  forget_older_snapshots(s);
  // Keyed by the list's address, valid only with the snapshot's serial: a freed
  // snapshot's address may come back with another pool.
  sticky_ring& ring = rings_[cands.data()];
  if (ring.serial == s.serial() && ring.size == cands.size()) {
    return ring;
  }
  const auto& exits = s.exits();
  const std::size_t n = cands.size();
  ring.serial = s.serial();
  ring.size = n;
  // Counting sort by the top `bits` bits (ids hash uniformly: 16 to 32 per bucket), then
  // a sort within each bucket. The bucket starts stay as the directory that lower_bound
  // starts from: small (1/16 of the entries' size) so that it stays in cache, and the
  // scan from a bucket start reads lines next to the session's window. O(n log 32);
  // about one cache miss per exit to read its hash.
  int bits = 1;
  while ((std::size_t{32} << bits) <= n) {
    ++bits;
  }
  ring.shift = 64 - bits;
  const std::size_t buckets = std::size_t{1} << bits;
  std::vector<std::uint64_t> hashes(n);
  ring.dir.assign(buckets + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    hashes[i] = exits[cands[i]]->id_hash();
    ++ring.dir[(hashes[i] >> ring.shift) + 1];
  }
  for (std::size_t b = 0; b < buckets; ++b) {
    ring.dir[b + 1] += ring.dir[b];
  }
  ring.entries.resize(n);
  std::vector<std::uint32_t> fill(ring.dir.begin(), ring.dir.end() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    ring.entries[fill[hashes[i] >> ring.shift]++] = {hashes[i], exits[cands[i]].get()};
  }
  // Equal hashes (two ids colliding in 64 bits) in id order, the same in every process.
  auto less = [](const sticky_ring::entry& a, const sticky_ring::entry& b) {
    return a.hash < b.hash || (a.hash == b.hash && a.e->id() < b.e->id());
  };
  for (std::size_t b = 0; b < buckets; ++b) {
    std::sort(ring.entries.begin() + ring.dir[b], ring.entries.begin() + ring.dir[b + 1], less);
  }
  ring.weight.clear();
  if (!s.uniform_weight()) {
    ring.weight.reserve(n);
    for (const auto& entry : ring.entries) {
      ring.weight.push_back(weight_of(*entry.e));
    }
  }
  return ring;
}

}  // namespace exitpool::pool
