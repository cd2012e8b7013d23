#include "pool/selector.hpp"

#include <algorithm>
#include <limits>

#include "pool/sticky.hpp"

namespace exitpool::pool {

namespace {

constexpr std::size_t p2c_threshold = 64;  // least_inflight samples two above this many usable exits
constexpr double explore_probability = 0.05;

bool contains(std::span<const exit* const> set, const exit* e) {
  return std::find(set.begin(), set.end(), e) != set.end();
}

int set_fields(const filter& f) {
  return static_cast<int>(!f.country.empty()) + static_cast<int>(!f.city.empty()) + static_cast<int>(!f.type.empty());
}

double weight_of(const exit& e) { return std::max(e.spec().weight, 0.0); }

}  // namespace

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

  pick_result out;

  // ---- 0. round-robin fast path for large pools ----
  // The full pass below classifies every candidate: O(pool) per pick, ~0.1 s at a
  // million exits. Round-robin only needs the first usable exit at or after the
  // cursor, so look at a bounded window first; anything unusual (probing exits,
  // tiers, nothing usable in the window) falls through to the full pass.
  if (policy_ == policy::round_robin && !sticky && s.single_tier() && n >= fast_path_min) {
    const bool check_bans = by_host && r.bans != nullptr;
    const bool check_host_rate = by_host && r.host_rates != nullptr && r.host_rates->limited();
    const std::size_t start = cursor_ % n;
    for (std::size_t k = 0; k < fast_path_window; ++k) {
      const std::size_t pos = (start + k) % n;
      exit& e = *exits[cands[pos]];
      if ((!all_match && !r.f.matches(e)) || contains(r.exclude, &e) || e.state(now) != exit_state::healthy ||
          e.at_concurrency_cap() || (e.limiter().limited() && !e.limiter().available(now)) ||
          (check_bans && r.bans->banned(e, r.host, now)) ||
          (check_host_rate && r.host_rates->next_available(e, r.host, now) > now)) {
        continue;
      }
      if (!e.limiter().try_take(now)) {
        continue;
      }
      if (check_host_rate && !r.host_rates->try_take(e, r.host, now)) {
        e.limiter().refund();
        continue;
      }
      cursor_ = pos + 1;
      out.chosen = &e;
      out.tier = e.tier();
      out.matching = n;  // not counted on this path: at least the window's matches
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
  const bool check_bans = by_host && r.bans != nullptr;
  const bool check_host_rate = by_host && r.host_rates != nullptr && r.host_rates->limited();
  if (check_bans || check_host_rate) {
    // One batch lookup per table: the host's stripe is locked once, not once per exit.
    hashes_.clear();
    for (const cand& c : scratch_) {
      hashes_.push_back(c.e->id_hash());
    }
    times_.resize(hashes_.size());
    if (check_bans) {
      r.bans->banned_until_many(r.host, host_hash, hashes_, now, times_);
      for (std::size_t i = 0; i < scratch_.size(); ++i) {
        if (times_[i] != time_point::min()) {
          block(scratch_[i], times_[i]);
          scratch_[i].banned = true;
        }
      }
    }
    if (check_host_rate) {
      r.host_rates->next_available_many(r.host, host_hash, hashes_, now, times_);
      for (std::size_t i = 0; i < scratch_.size(); ++i) {
        if (times_[i] > now) {
          block(scratch_[i], times_[i]);
        }
      }
    }
  }
  for (cand& c : scratch_) {
    exit& e = *c.e;
    if (e.limiter().limited() && !e.limiter().available(now)) {
      block(c, e.limiter().next_available(now));
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
    exit& e = *c.e;
    if (c.probing && !e.try_claim_probe(now, r.probe_timeout)) {
      block(c, e.probe_busy_until(now, r.probe_timeout).value_or(now + capacity_poll));
      return false;
    }
    auto undo_probe = [&] {
      if (c.probing) {
        e.release_probe();
      }
    };
    if (!e.limiter().try_take(now)) {
      undo_probe();
      block(c, e.limiter().next_available(now));
      return false;
    }
    if (check_host_rate && !r.host_rates->try_take(e, r.host, now)) {
      e.limiter().refund();  // this pick took it a moment ago and gives up the exit
      undo_probe();
      block(c, r.host_rates->next_available(e, r.host, now));
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

  const std::uint64_t key_hash = sticky ? mix64(hash64(r.sticky_key), r.sticky_generation) : 0;
  auto below = [this](std::uint64_t bound) {  // uniform in [0, bound)
    return std::uniform_int_distribution<std::uint64_t>(0, bound - 1)(rng_);
  };

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
        double target = uniform ? static_cast<double>(below(count))
                                : std::uniform_real_distribution<double>(0, total_weight)(rng_);
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
  const std::optional<int> start = by_host && r.tiers != nullptr ? r.tiers->start_tier(r.host, now) : std::nullopt;
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

}  // namespace exitpool::pool
