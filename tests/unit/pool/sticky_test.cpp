#include "pool/sticky.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pool/ban.hpp"
#include "pool/selector.hpp"

namespace exitpool::pool {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + 1000h;

proto::exit_spec spec(std::string id, double weight = 1.0) {
  proto::exit_spec s;
  s.scheme = proto::exit_scheme::http;
  s.host = "proxy.example";
  s.port = 3128;
  s.id = std::move(id);
  s.weight = weight;
  return s;
}

std::shared_ptr<const snapshot> numbered(int n) {
  std::vector<proto::exit_spec> specs;
  for (int i = 0; i < n; ++i) {
    specs.push_back(spec("exit-" + std::to_string(i)));
  }
  return snapshot::build(std::move(specs));
}

std::string key(int i) {
  return "user1-session-" + std::to_string(i);
}

exit* sticky_pick(selector& sel, const snapshot& s, std::string_view k, std::uint64_t generation = 0,
                  time_point now = t0) {
  pick_request r;
  r.sticky_key = k;
  r.sticky_generation = generation;
  auto res = sel.pick(s, r, now);
  EXPECT_EQ(res.error, pick_error::none);
  return res.chosen;
}

// ---- hashing ----------------------------------------------------------------------------------

TEST(Hash, StableAcrossBuilds) {
  // Pinned: sticky sessions of a fleet depend on every process computing these.
  EXPECT_EQ(hash64(""), 0x9CA066F1A4AB2EEAULL);
  EXPECT_EQ(hash64("abc"), 0xCEB3551AE13032E9ULL);
  EXPECT_EQ(hash64("user1-session-abc123"), 0x503AE60240352EFDULL);
  EXPECT_EQ(mix64(1, 2), 0x25ABCB5C468F3099ULL);
}

TEST(Hash, SeedAndInputMatter) {
  EXPECT_NE(hash64("abc"), hash64("abd"));
  EXPECT_NE(hash64("abc"), hash64("abc", 1));
  EXPECT_NE(hash64("abcdefgh"), hash64(std::string_view("abcdefgh\0", 9)));  // trailing zero byte counts
  EXPECT_NE(hash64(std::string_view("a\0", 2)), hash64("a"));
  EXPECT_NE(mix64(1, 2), mix64(2, 1));
}

TEST(Hash, LowBitsAreUniform) {
  // Stripes and shards use the low bits of hashes of similar keys.
  std::vector<int> buckets(64);
  const int n = 64000;
  for (int i = 0; i < n; ++i) {
    ++buckets[hash64(key(i)) & 63];
  }
  for (int b : buckets) {
    EXPECT_NEAR(b, n / 64, 150);
  }
}

TEST(Hash, Avalanche) {
  // Flipping one input bit flips about half the output bits.
  double total = 0;
  int samples = 0;
  for (int i = 0; i < 200; ++i) {
    std::string s = key(i);
    const auto h = hash64(s);
    for (std::size_t byte = 0; byte < s.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string t = s;
        t[byte] = static_cast<char>(t[byte] ^ (1 << bit));
        total += __builtin_popcountll(h ^ hash64(t));
        ++samples;
      }
    }
  }
  EXPECT_NEAR(total / samples, 32.0, 0.5);
}

TEST(Rendezvous, ScoreIsPositiveFiniteAndWeighted) {
  for (int i = 0; i < 1000; ++i) {
    const double s = rendezvous_score(hash64(key(i)), hash64("exit"), 1.0);
    EXPECT_GT(s, 0.0);
    EXPECT_TRUE(std::isfinite(s));
    EXPECT_DOUBLE_EQ(rendezvous_score(hash64(key(i)), hash64("exit"), 2.0), 2 * s);
  }
  EXPECT_EQ(rendezvous_score(1, 2, 0.0), 0.0);
  // Extreme hashes stay inside (0, 1) for u.
  EXPECT_TRUE(std::isfinite(rendezvous_score(0, 0, 1.0)));
  for (std::uint64_t a : {0ull, ~0ull}) {
    for (std::uint64_t b : {0ull, ~0ull, 1ull}) {
      const double s = rendezvous_score(a, b, 1.0);
      EXPECT_GT(s, 0.0);
      EXPECT_TRUE(std::isfinite(s));
    }
  }
}

// ---- sticky selection -------------------------------------------------------------------------

TEST(Sticky, SameExitOnEveryShardWhateverThePolicy) {
  auto s = numbered(25);
  const policy policies[] = {policy::round_robin, policy::random, policy::least_inflight, policy::fastest};
  std::vector<selector> shards;
  for (std::uint64_t seed = 0; seed < 16; ++seed) {
    shards.emplace_back(policies[seed % 4], seed * 7919 + 1);
  }
  for (int i = 0; i < 500; ++i) {
    const exit* expected = sticky_pick(shards[0], *s, key(i));
    ASSERT_NE(expected, nullptr);
    for (auto& shard : shards) {
      for (int repeat = 0; repeat < 3; ++repeat) {
        EXPECT_EQ(sticky_pick(shard, *s, key(i)), expected) << key(i);
      }
    }
  }
}

TEST(Sticky, SameExitInAnotherProcessSnapshot) {
  // Another gateway of the fleet builds its own snapshot from the same pool, in another order.
  auto a = numbered(20);
  std::vector<proto::exit_spec> reversed;
  for (int i = 19; i >= 0; --i) {
    reversed.push_back(spec("exit-" + std::to_string(i)));
  }
  auto b = snapshot::build(reversed);
  selector sa(policy::round_robin, 1);
  selector sb(policy::random, 2);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(sticky_pick(sa, *a, key(i))->id(), sticky_pick(sb, *b, key(i))->id());
  }
}

TEST(Sticky, KeysSpreadEvenly) {
  auto s = numbered(10);
  selector sel(policy::round_robin, 0);
  std::map<std::string, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    ++counts[sticky_pick(sel, *s, key(i))->id()];
  }
  ASSERT_EQ(counts.size(), 10u);
  for (const auto& [id, c] : counts) {
    EXPECT_NEAR(c, n / 10, 200) << id;  // ~4.7 sigma
  }
}

TEST(Sticky, OnlySessionsOfAFailedExitMove) {
  auto s = numbered(10);
  selector sel(policy::random, 3);
  const int n = 5000;
  std::vector<const exit*> before;
  for (int i = 0; i < n; ++i) {
    before.push_back(sticky_pick(sel, *s, key(i)));
  }
  exit& failed = *s->exits()[4];
  failed.report({false, 0us}, t0, {.failures_to_eject = 1});
  int moved = 0;
  std::map<const exit*, int> moved_to;
  for (int i = 0; i < n; ++i) {
    const exit* now = sticky_pick(sel, *s, key(i));
    if (before[i] == &failed) {
      EXPECT_NE(now, &failed);
      ++moved;
      ++moved_to[now];
    } else {
      EXPECT_EQ(now, before[i]) << key(i);  // untouched, every single one
    }
  }
  EXPECT_GT(moved, 350);
  EXPECT_EQ(moved_to.size(), 9u);  // the failed exit's sessions spread over the rest
  // When it comes back (its cool-down over and one probe succeeded), its sessions return to it.
  failed.report({true, 0us}, t0 + 1h, {.failures_to_eject = 1});
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(sticky_pick(sel, *s, key(i), 0, t0 + 1h), before[i]);
  }
}

TEST(Sticky, RetryMovesToTheSameSecondChoiceEverywhere) {
  auto s = numbered(10);
  selector a(policy::round_robin, 1);
  selector b(policy::fastest, 99);
  for (int i = 0; i < 200; ++i) {
    const std::string k = key(i);  // pick_request borrows the key
    const exit* first = sticky_pick(a, *s, k);
    const exit* ex[] = {first};
    pick_request r;
    r.sticky_key = k;
    r.exclude = ex;
    const exit* second = a.pick(*s, r, t0).chosen;
    EXPECT_NE(second, first);
    EXPECT_EQ(b.pick(*s, r, t0).chosen, second);
  }
}

TEST(Sticky, AddingAnExitMovesOnlySessionsToIt) {
  auto s10 = numbered(10);
  auto s11 = numbered(11);
  selector sel(policy::round_robin, 0);
  int moved = 0;
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    const auto& before = sticky_pick(sel, *s10, key(i))->id();
    const auto& after = sticky_pick(sel, *s11, key(i))->id();
    if (before != after) {
      EXPECT_EQ(after, "exit-10");
      ++moved;
    }
  }
  EXPECT_NEAR(moved, n / 11, 120);
}

TEST(Sticky, NewGenerationMovesMostSessions) {
  auto s = numbered(10);
  selector sel(policy::least_inflight, 0);
  int moved = 0;
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    moved += sticky_pick(sel, *s, key(i), 0) != sticky_pick(sel, *s, key(i), 1) ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(moved) / n, 0.9, 0.03);  // 1 in 10 lands on the same exit by chance
}

TEST(Sticky, RespectsWeights) {
  auto s = snapshot::build({spec("light", 1.0), spec("heavy", 3.0)});
  selector sel(policy::round_robin, 0);
  int heavy = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    heavy += sticky_pick(sel, *s, key(i))->id() == "heavy" ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(heavy) / n, 0.75, 0.015);
}

TEST(Sticky, AllDownPicksSoonestBackConsistently) {
  auto s = numbered(5);
  health_config cfg{.failures_to_eject = 1, .base_cooldown = 10s, .max_cooldown = 300s};
  for (int i = 0; i < 5; ++i) {
    s->exits()[i]->report({false, 0us}, t0 + std::chrono::seconds(i == 3 ? 0 : 5), cfg);
  }
  selector a(policy::random, 1);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(sticky_pick(a, *s, key(i), 0, t0 + 6s)->id(), "exit-3");
  }
  // Equal cool-downs: ties broken by rendezvous score, the same on every shard.
  auto t = numbered(5);
  for (const auto& e : t->exits()) {
    e->report({false, 0us}, t0, cfg);
  }
  selector b(policy::fastest, 2);
  std::set<const exit*> chosen;
  for (int i = 0; i < 200; ++i) {
    const exit* e = sticky_pick(a, *t, key(i), 0, t0 + 1s);
    EXPECT_EQ(sticky_pick(b, *t, key(i), 0, t0 + 1s), e);
    chosen.insert(e);
  }
  EXPECT_EQ(chosen.size(), 5u);
}

// ---- session_table ----------------------------------------------------------------------------

TEST(SessionTable, LifetimeAnchoredToFirstUse) {
  session_table table;
  const auto ttl = 60s;
  EXPECT_EQ(table.generation("k", ttl, t0), 0u);
  // Use does not extend the lifetime.
  EXPECT_EQ(table.generation("k", ttl, t0 + 30s), 0u);
  EXPECT_EQ(table.generation("k", ttl, t0 + 59s), 0u);
  EXPECT_EQ(table.generation("k", ttl, t0 + 59999ms), 0u);
  // Lifetime over: a new generation, anchored at this use.
  EXPECT_EQ(table.generation("k", ttl, t0 + 60s), 1u);
  EXPECT_EQ(table.generation("k", ttl, t0 + 119s), 1u);
  EXPECT_EQ(table.generation("k", ttl, t0 + 120s), 2u);
  // Long idle: one bump, not one per elapsed ttl.
  EXPECT_EQ(table.generation("k", ttl, t0 + 1h), 3u);
  // Keys are independent.
  EXPECT_EQ(table.generation("other", ttl, t0 + 1h), 0u);
  EXPECT_EQ(table.size(), 2u);
}

TEST(SessionTable, GenerationBumpMovesTheSessionOnlyAfterTtl) {
  auto s = numbered(10);
  selector sel(policy::round_robin, 0);
  session_table table;
  const int n = 2000;
  std::vector<const exit*> first;
  for (int i = 0; i < n; ++i) {
    first.push_back(sticky_pick(sel, *s, key(i), table.generation(key(i), 600s, t0)));
  }
  int moved = 0;
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(sticky_pick(sel, *s, key(i), table.generation(key(i), 600s, t0 + 599s)), first[i]);
  }
  for (int i = 0; i < n; ++i) {
    moved += sticky_pick(sel, *s, key(i), table.generation(key(i), 600s, t0 + 600s)) != first[i] ? 1 : 0;
  }
  EXPECT_GT(moved, n * 85 / 100);
}

TEST(SessionTable, FreshMarksTheLookupThatStartedTheGeneration) {
  session_table table;
  EXPECT_TRUE(table.lookup("k", 60s, t0).fresh);
  EXPECT_FALSE(table.lookup("k", 60s, t0 + 1s).fresh);
  EXPECT_TRUE(table.lookup("k", 60s, t0 + 60s).fresh);
}

TEST(SessionTable, AdoptTakesTheFleetsPlaceUnlessLater) {
  session_table table;
  table.lookup("k", 60s, t0);
  // Another gateway started it earlier: its anchor and its end win.
  table.adopt("k", 0, 77, t0 + 10s);
  auto info = table.lookup("k", 60s, t0 + 5s);
  EXPECT_EQ(info.anchor, 77u);
  EXPECT_FALSE(info.fresh);
  EXPECT_TRUE(table.lookup("k", 60s, t0 + 10s).fresh);  // ends when the fleet's lifetime ends
  // An older generation does not overwrite a newer one.
  table.adopt("k", 0, 5, t0 + 100s);
  EXPECT_EQ(table.lookup("k", 60s, t0 + 11s).generation, 1u);
  // A claim answered "no anchor yet" keeps the anchor set here meanwhile.
  table.anchor("k", 1, 42);
  table.adopt("k", 1, 0, t0 + 70s);
  EXPECT_EQ(table.lookup("k", 60s, t0 + 12s).anchor, 42u);
  // Unknown keys are inserted.
  table.adopt("new", 2, 9, t0 + 30s);
  EXPECT_EQ(table.lookup("new", 60s, t0).generation, 2u);
  EXPECT_EQ(table.lookup("new", 60s, t0).anchor, 9u);
}

TEST(SessionTable, Sweep) {
  session_table table;
  for (int i = 0; i < 100; ++i) {
    table.generation(key(i), std::chrono::seconds(i < 30 ? 10 : 100), t0);
  }
  EXPECT_EQ(table.size(), 100u);
  EXPECT_EQ(table.sweep(t0 + 9s), 100u);
  EXPECT_EQ(table.sweep(t0 + 10s), 70u);
  EXPECT_EQ(table.size(), 70u);
  EXPECT_EQ(table.sweep(t0 + 1h), 0u);
  // A swept key starts over.
  EXPECT_EQ(table.generation(key(0), 10s, t0 + 1h), 0u);
}

TEST(SessionTable, BoundedByCountNeverEvictingLiveSessions) {
  session_table table(64 * 4);  // 4 keys per stripe
  int kept = 0;
  int refused = 0;
  for (int i = 0; i < 10000; ++i) {
    const auto info = table.lookup(key(i), 60s, t0);
    (info.refused ? refused : kept) += 1;
  }
  EXPECT_EQ(table.size(), 256u);
  EXPECT_EQ(kept, 256);
  EXPECT_EQ(refused, 10000 - 256);
  // Known keys still answer (and keep their generation) while the table is full.
  int known = 0;
  for (int i = 0; i < 10000 && known < 10; ++i) {
    const auto info = table.lookup(key(i), 60s, t0 + 1s);
    if (!info.refused) {
      EXPECT_EQ(info.generation, 0u);
      ++known;
    }
  }
  EXPECT_EQ(known, 10);
  // Once sessions expire, new keys take their places without waiting for the sweeper.
  const auto later = table.lookup("fresh", 60s, t0 + 61s);
  EXPECT_FALSE(later.refused);
  EXPECT_EQ(later.generation, 0u);
  EXPECT_LE(table.size(), 256u);
}

TEST(SessionTable, ConcurrentUse) {
  session_table table;
  const int threads = 8;
  const int keys = 500;
  const int rounds = 20;
  std::atomic<int> mismatches{0};
  // Shards share one clock: every thread finishes round r (time t0 + 10 s * r) before any starts r + 1.
  std::barrier sync(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&table, &mismatches, &sync, t] {
      for (int r = 0; r < rounds; ++r) {
        const time_point now = t0 + std::chrono::seconds(10 * r);
        for (int k = 0; k < keys; ++k) {
          const int i = (k + t * 61) % keys;  // threads start on different keys, then collide
          if (table.generation(key(i), 10s, now) != static_cast<std::uint64_t>(r)) {
            mismatches.fetch_add(1);
          }
        }
        if (t == 0 && r % 5 == 0) {
          table.sweep(now - 1h);  // races with the lookups; removes nothing
        }
        sync.arrive_and_wait();
      }
    });
  }
  for (auto& th : pool) {
    th.join();
  }
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(table.size(), static_cast<std::size_t>(keys));
}

// ---- sticky on large pools: the hash ring with windowed rendezvous ---------------------------

std::vector<proto::exit_spec> numbered_specs(int from, int to) {
  std::vector<proto::exit_spec> specs;
  for (int i = from; i < to; ++i) {
    specs.push_back(spec("exit-" + std::to_string(i)));
  }
  return specs;
}

TEST(StickyLargePool, SameExitOnEveryShardAndGateway) {
  auto a = numbered(3000);
  ASSERT_GE(a->size(), fast_path_min);
  auto specs = numbered_specs(0, 3000);
  std::reverse(specs.begin(), specs.end());
  auto b = snapshot::build(std::move(specs));  // another gateway, another file order
  const policy policies[] = {policy::round_robin, policy::random, policy::least_inflight, policy::fastest};
  std::vector<selector> shards;
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    shards.emplace_back(policies[seed % 4], seed * 7919 + 1);
  }
  std::set<std::string> chosen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = sticky_pick(shards[0], *a, key(i))->id();
    chosen.insert(id);
    for (auto& shard : shards) {
      EXPECT_EQ(sticky_pick(shard, *a, key(i))->id(), id) << key(i);
      EXPECT_EQ(sticky_pick(shard, *b, key(i))->id(), id) << key(i);
    }
    // A retry excluding the first choice lands on the same second choice everywhere.
    const exit* first = sticky_pick(shards[1], *a, key(i));
    const exit* ex[] = {first};
    pick_request r;
    const std::string k = key(i);
    r.sticky_key = k;
    r.exclude = ex;
    const exit* second = shards[2].pick(*a, r, t0).chosen;
    ASSERT_NE(second, nullptr);
    EXPECT_NE(second, first);
    EXPECT_EQ(shards[3].pick(*a, r, t0).chosen, second);
  }
  EXPECT_GT(chosen.size(), 800u);  // sessions spread over the pool
}

TEST(StickyLargePool, TwoFieldFiltersPickOnlyMatchingExits) {
  std::vector<proto::exit_spec> specs;
  for (int i = 0; i < 3000; ++i) {
    auto sp = spec("exit-" + std::to_string(i));
    sp.country = i % 2 == 0 ? "de" : "us";
    sp.type = i % 3 == 0 ? "residential" : "datacenter";
    specs.push_back(std::move(sp));
  }
  auto s = snapshot::build(std::move(specs));
  selector a(policy::random, 1);
  selector b(policy::fastest, 2);
  pick_request r;
  r.f.country = "de";
  r.f.type = "residential";
  std::set<const exit*> chosen;
  for (int i = 0; i < 2000; ++i) {
    const std::string k = key(i);
    r.sticky_key = k;
    const exit* e = a.pick(*s, r, t0).chosen;
    ASSERT_NE(e, nullptr);
    EXPECT_TRUE(e->spec().country == "de" && e->spec().type == "residential") << e->id();
    EXPECT_EQ(b.pick(*s, r, t0).chosen, e) << k;
    chosen.insert(e);
  }
  EXPECT_GT(chosen.size(), 400u);  // of 500
}

TEST(StickyLargePool, KeysSpreadEvenly) {
  auto s = numbered(1000);
  selector sel(policy::round_robin, 0);
  std::map<std::string, int> counts;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    ++counts[sticky_pick(sel, *s, key(i))->id()];
  }
  EXPECT_GT(counts.size(), 990u);
  double sum_sq = 0;
  for (const auto& [id, c] : counts) {
    EXPECT_LT(c, 300) << id;  // mean 100
    sum_sq += (c - 100.0) * (c - 100.0);
  }
  // Spread: sampling noise (10%) plus the ring's gaps smoothed over a window (~18%).
  EXPECT_LT(std::sqrt(sum_sq / 1000) / 100, 0.3);
}

TEST(StickyLargePool, ABannedOrFailedExitMovesOnlyItsSessions) {
  auto s = numbered(2000);
  selector sel(policy::random, 3);
  const int n = 20000;
  std::vector<const exit*> before;
  std::map<const exit*, int> load;
  for (int i = 0; i < n; ++i) {
    before.push_back(sticky_pick(sel, *s, key(i)));
    ++load[before.back()];
  }
  // The two busiest exits: one banned for the host, one ejected.
  std::vector<std::pair<int, const exit*>> by_load;
  for (const auto& [e, c] : load) {
    by_load.emplace_back(c, e);
  }
  std::sort(by_load.rbegin(), by_load.rend());
  exit& banned = const_cast<exit&>(*by_load[0].second);
  exit& failed = const_cast<exit&>(*by_load[1].second);
  local_state st;
  st.ban(banned, "x.test", t0 + 1h);
  failed.report({false, 0us}, t0, {.failures_to_eject = 1});
  int moved = 0;
  for (int i = 0; i < n; ++i) {
    const std::string k = key(i);
    pick_request r;
    r.sticky_key = k;
    r.host = "x.test";
    r.st = &st;
    const exit* now = sel.pick(*s, r, t0).chosen;
    ASSERT_NE(now, nullptr);
    if (before[i] == &banned || before[i] == &failed) {
      EXPECT_NE(now, before[i]);
      ++moved;
    } else {
      EXPECT_EQ(now, before[i]) << k;  // untouched, every single one
    }
    // Another host is not affected by the ban.
    if (before[i] == &banned) {
      EXPECT_EQ(sticky_pick(sel, *s, k), &banned);
    }
  }
  EXPECT_EQ(moved, by_load[0].first + by_load[1].first);
  // Once it works again, the failed exit's sessions come back.
  failed.report({true, 0us}, t0 + 1h, {.failures_to_eject = 1});
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(sticky_pick(sel, *s, key(i), 0, t0 + 1h), before[i]);
  }
}

TEST(StickyLargePool, ReloadKeepingMostExitsMovesFewSessions) {
  auto s = numbered(2000);
  // A reload: 1% of the exits removed (0..19), 1% added (2000..2019), the rest carried over.
  auto specs = numbered_specs(20, 2020);
  auto reloaded = snapshot::build(std::move(specs), s.get());
  selector sel(policy::round_robin, 0);
  const int n = 20000;
  int moved = 0;
  int forced = 0;  // sessions whose exit was removed
  for (int i = 0; i < n; ++i) {
    const std::string before = sticky_pick(sel, *s, key(i))->id();
    const std::string after = sticky_pick(sel, *reloaded, key(i))->id();
    forced += reloaded->find(before) == nullptr ? 1 : 0;
    moved += before != after ? 1 : 0;
  }
  // Full rendezvous would move ~2% (1% from removed exits, 1% to added ones); each change
  // also shifts its windows by one exit, about doubling that.
  EXPECT_GT(moved, forced);
  EXPECT_LT(static_cast<double>(moved) / n, 0.06);
}

TEST(StickyLargePool, NewGenerationMovesAlmostEverySession) {
  auto s = numbered(1000);
  selector sel(policy::least_inflight, 0);
  int moved = 0;
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    moved += sticky_pick(sel, *s, key(i), 0) != sticky_pick(sel, *s, key(i), 1) ? 1 : 0;
  }
  EXPECT_GT(static_cast<double>(moved) / n, 0.98);
}

TEST(StickyLargePool, RespectsWeights) {
  std::vector<proto::exit_spec> specs;
  for (int i = 0; i < 1000; ++i) {
    specs.push_back(spec("exit-" + std::to_string(i), i % 2 == 0 ? 1.0 : 3.0));
  }
  auto s = snapshot::build(std::move(specs));
  selector sel(policy::round_robin, 0);
  int heavy = 0;
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    heavy += sticky_pick(sel, *s, key(i))->spec().weight == 3.0 ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(heavy) / n, 0.75, 0.03);  // within each window, so roughly
}

}  // namespace
}  // namespace exitpool::pool
