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

// Counts gathered in one pass over the candidates.
struct scan {
  std::size_t matching = 0;   // match the filter
  std::size_t remaining = 0;  // ... and are not excluded
  std::size_t usable = 0;     // ... and are not cooling down
  double total_weight = 0;    // of the usable ones
  exit* soonest = nullptr;    // remaining exit whose cool-down ends first (panic fallback)
};

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

  auto below = [this](std::uint64_t bound) {  // uniform in [0, bound)
    return std::uniform_int_distribution<std::uint64_t>(0, bound - 1)(rng_);
  };

  // Visits the candidates in order, from position `start`, with the counts of `sc`
  // kept up to date; `on_usable(e, pos)` sees each usable, not excluded match and
  // returns false to stop early.
  auto walk = [&](scan& sc, std::size_t start, auto&& on_usable) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t pos = start + i;
      exit& e = *exits[cands[pos % n]];
      if (!all_match && !r.f.matches(e)) {
        continue;
      }
      ++sc.matching;
      if (contains(r.exclude, &e)) {
        continue;
      }
      ++sc.remaining;
      if (!e.usable(now)) {
        if (sc.soonest == nullptr || e.down_until() < sc.soonest->down_until()) {
          sc.soonest = &e;
        }
        continue;
      }
      ++sc.usable;
      sc.total_weight += weight_of(e);
      if (!on_usable(e, pos)) {
        return false;
      }
    }
    return true;
  };

  auto finish = [&](const scan& sc, exit* chosen) {
    pick_result out;
    out.matching = sc.matching;
    if (sc.matching == 0) {
      out.error = pick_error::no_match;
    } else if (sc.remaining == 0) {
      out.error = pick_error::exhausted;
    } else {
      // Nothing usable left: better an exit cooling down than no exit at all.
      out.chosen = chosen != nullptr ? chosen : sc.soonest;
      if (out.chosen == nullptr) {
        // Two-pass policies only: other shards ejected every usable exit between
        // the passes. Take the first remaining match.
        for (std::uint32_t i : cands) {
          exit& e = *exits[i];
          if ((all_match || r.f.matches(e)) && !contains(r.exclude, &e)) {
            out.chosen = &e;
            break;
          }
        }
      }
    }
    return out;
  };

  if (n == 0) {
    return finish(scan{}, nullptr);
  }

  if (sticky) {
    // Rendezvous over the usable exits: every shard and every gateway with the same
    // pool agrees, and only the sessions of an exit that goes away move.
    const std::uint64_t key_hash = mix64(hash64(r.sticky_key), r.sticky_generation);
    scan sc;
    exit* best = nullptr;
    double best_score = -1;
    walk(sc, 0, [&](exit& e, std::size_t) {
      const double score = rendezvous_score(key_hash, e.id_hash(), weight_of(e));
      if (score > best_score) {
        best_score = score;
        best = &e;
      }
      return true;
    });
    if (best == nullptr && sc.remaining > 0) {
      // All cooling down: the soonest back, ties broken by score so shards agree.
      double soonest_score = -1;
      for (std::uint32_t i : cands) {
        exit& e = *exits[i];
        if ((!all_match && !r.f.matches(e)) || contains(r.exclude, &e) || e.down_until() != sc.soonest->down_until()) {
          continue;
        }
        const double score = rendezvous_score(key_hash, e.id_hash(), weight_of(e));
        if (score > soonest_score) {
          soonest_score = score;
          best = &e;
        }
      }
    }
    return finish(sc, best);
  }

  switch (policy_) {
    case policy::round_robin: {
      scan sc;
      exit* chosen = nullptr;
      const std::size_t start = cursor_ % n;
      walk(sc, start, [&](exit& e, std::size_t pos) {
        chosen = &e;
        cursor_ = pos + 1;
        return false;
      });
      if (chosen != nullptr) {
        // Stopped early: count every match for the result.
        sc.matching =
            all_match ? n : static_cast<std::size_t>(std::count_if(cands.begin(), cands.end(), [&](std::uint32_t i) {
              return r.f.matches(*exits[i]);
            }));
      }
      return finish(sc, chosen);
    }

    case policy::random: {
      scan sc;
      walk(sc, 0, [](exit&, std::size_t) { return true; });
      exit* chosen = nullptr;
      if (sc.usable > 0) {
        // Second pass: the exit where a uniform draw over the total weight lands.
        // No allocation per pick; a weight-free pool degrades to uniform.
        const bool uniform = !(sc.total_weight > 0);
        double target = uniform ? static_cast<double>(below(sc.usable))
                                : std::uniform_real_distribution<double>(0, sc.total_weight)(rng_);
        scan again;
        walk(again, 0, [&](exit& e, std::size_t) {
          chosen = &e;  // the last usable one absorbs rounding
          target -= uniform ? 1.0 : weight_of(e);
          return target >= 0;
        });
      }
      return finish(sc, chosen);
    }

    case policy::least_inflight: {
      scan sc;
      walk(sc, 0, [](exit&, std::size_t) { return true; });
      exit* chosen = nullptr;
      scan again;
      if (sc.usable > p2c_threshold) {
        // Power of two choices: every shard racing for the single global minimum
        // would herd onto it before the in-flight counts catch up.
        const std::uint64_t a = below(sc.usable);
        std::uint64_t b = below(sc.usable - 1);
        b += b >= a ? 1 : 0;
        exit* first = nullptr;
        exit* second = nullptr;
        std::uint64_t k = 0;
        walk(again, 0, [&](exit& e, std::size_t) {
          first = k == a ? &e : first;
          second = k == b ? &e : second;
          ++k;
          return first == nullptr || second == nullptr;
        });
        if (first != nullptr && second != nullptr) {
          chosen = second->inflight() < first->inflight() ? second : first;
        } else {
          chosen = first != nullptr ? first : second;  // exits ejected meanwhile by other shards
        }
      } else if (sc.usable > 0) {
        int best = std::numeric_limits<int>::max();
        std::uint64_t ties = 0;
        walk(again, 0, [&](exit& e, std::size_t) {
          const int load = e.inflight();
          if (load < best) {
            best = load;
            chosen = &e;
            ties = 1;
          } else if (load == best && below(++ties) == 0) {
            chosen = &e;  // reservoir sampling: uniform among the ties
          }
          return true;
        });
      }
      return finish(sc, chosen);
    }

    case policy::fastest: {
      scan sc;
      exit* chosen = nullptr;
      double best = std::numeric_limits<double>::infinity();
      std::uint64_t ties = 0;
      walk(sc, 0, [&](exit& e, std::size_t) {
        const double latency = e.ewma_latency_us();  // -1 when unmeasured: those first
        if (latency < best) {
          best = latency;
          chosen = &e;
          ties = 1;
        } else if (latency == best && below(++ties) == 0) {
          chosen = &e;
        }
        return true;
      });
      if (sc.usable > 1 && std::bernoulli_distribution(explore_probability)(rng_)) {
        // Exploration: re-measure the others now and then.
        std::uint64_t k = below(sc.usable);
        scan again;
        walk(again, 0, [&](exit& e, std::size_t) {
          chosen = &e;
          return k-- > 0;
        });
      }
      return finish(sc, chosen);
    }
  }
  return finish(scan{}, nullptr);
}

}  // namespace exitpool::pool
