// pool_bench: exit selection, memory and pool parsing at 1,000,000 exits (Google Benchmark).
// Built by bench/gateway/run.sh against the project's exitpool_core:
//   g++ -std=c++20 -O2 -I src bench/gateway/pool_bench.cpp build-bench/libexitpool_core.a -lfmt -lbenchmark -pthread
// Before the benchmarks it prints one line measured once, outside Google Benchmark:
//   POOLMEM exits=N rss_before_kib=A rss_after_kib=B bytes_per_exit=X parse_s=P build_s=S
// (RSS after parse_pool_text + snapshot::build of the N-line text, the text and specs freed).
// EXITS (env, default 1000000) sets the pool size; POOL_FILE (env) also writes the text there
// (run.sh uses it for the SIGHUP reload test).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "pool/attempt.hpp"
#include "pool/pool.hpp"
#include "pool/selector.hpp"
#include "pool/sticky.hpp"
#include "proto/pool_line.hpp"

namespace {

using namespace exitpool;

std::size_t g_exits = 1000000;
constexpr int countries = 200;
std::shared_ptr<const pool::snapshot> g_snap;
std::shared_ptr<const pool::snapshot> g_snap_tiers;  // the same pool over tiers 0, 1, 2: built on first use

std::string country_code(int i) {
  std::string s = "c";
  s += static_cast<char>('a' + i / 26 % 26);
  s += static_cast<char>('a' + i % 26);
  return s;  // 200 distinct three-letter codes: caa .. chr
}

// `tiers`: exit i also gets tier=i%3 (a multi-tier pool).
std::string pool_text(std::size_t n, bool tiers = false) {
  std::string text;
  text.reserve(n * 96);
  static const char* types[] = {"residential", "isp", "datacenter"};
  char line[256];
  for (std::size_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(i % countries);
    std::snprintf(line, sizeof line, "http://u%zu:p%zu@10.%zu.%zu.%zu:%zu id=e%zu country=%s type=%s%s\n", i % 1000,
                  i % 997, (i >> 16) & 255, (i >> 8) & 255, i & 255, 1024 + i % 60000, i, country_code(c).c_str(),
                  types[i % 3],
                  !tiers       ? ""
                  : i % 3 == 0 ? " tier=0"
                  : i % 3 == 1 ? " tier=1"
                               : " tier=2");
    text += line;
  }
  return text;
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string k;
  while (f >> k) {
    if (k == "VmRSS:") {
      long v = 0;
      f >> v;
      return v;
    }
  }
  return 0;
}

double secs_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Which filter a pick benchmark asks for: none (all 1M exits), one country (1/200 of the
// pool, rotating over the 200), one type (1/3 of the pool: a filter matching a large
// fraction), or country and type (two fields: filter::matches checked on each candidate).
enum class bench_filter { all, country, type, country_type };
// Sticky keys: none, the same key every pick (its exits stay in cache), or 64k keys in turn.
enum class bench_keys { no, one, many };

void bm_pick(benchmark::State& state, pool::policy p, bench_filter f, bench_keys k, bool tiers) {
  if (tiers && !g_snap_tiers) {
    g_snap_tiers = pool::snapshot::build(proto::parse_pool_text(pool_text(g_exits, true), "tiers.txt"));
  }
  const pool::snapshot& snap = tiers ? *g_snap_tiers : *g_snap;
  pool::selector sel(p, 42);
  pool::pick_request r;
  std::vector<std::string> keys;
  if (k == bench_keys::one) {
    keys.emplace_back("alice\037cart42");
  } else if (k == bench_keys::many) {
    for (int i = 0; i < 65536; ++i) {
      keys.push_back("alice\037session-" + std::to_string(i));
    }
  }
  r.sticky_generation = 1;
  std::vector<pool::filter> filters(countries);
  static const char* types[] = {"residential", "isp", "datacenter"};
  for (int i = 0; i < countries; ++i) {
    if (f == bench_filter::country || f == bench_filter::country_type) {
      filters[static_cast<std::size_t>(i)].country = country_code(i);
    }
    if (f == bench_filter::type || f == bench_filter::country_type) {
      filters[static_cast<std::size_t>(i)].type = types[i % 3];
    }
  }
  const auto now = pool::clock::now();
  // Sticky rings and the lists of exits matching two-field filters are built on a
  // selector's first pick that needs them (BM_sticky_ring_build): warm them up outside
  // the timed loop.
  r.sticky_key = keys.empty() ? std::string_view() : keys[0];
  for (const auto& fl : filters) {
    r.f = fl;
    benchmark::DoNotOptimize(sel.pick(snap, r, now).chosen);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    r.f = filters[i % countries];  // the bench's own cost: a copy of three short strings
    if (!keys.empty()) {
      r.sticky_key = keys[i & (keys.size() - 1)];
    }
    ++i;
    auto res = sel.pick(snap, r, now);
    benchmark::DoNotOptimize(res.chosen);
  }
  state.counters["exits"] = static_cast<double>(snap.size());
}

// The first sticky pick of a fresh selector over all exits: builds its hash ring (lazy,
// once per snapshot, candidate list and shard).
void BM_sticky_ring_build(benchmark::State& state) {
  const auto now = pool::clock::now();
  for (auto _ : state) {
    pool::selector sel(pool::policy::round_robin, 42);
    pool::pick_request r;
    r.sticky_key = "alice\037cart42";
    benchmark::DoNotOptimize(sel.pick(*g_snap, r, now).chosen);
    state.PauseTiming();
    sel = pool::selector(pool::policy::round_robin, 0);  // freeing the ring is not part of it
    state.ResumeTiming();
  }
}

struct pick_case {
  const char* name;
  pool::policy p;
  bench_filter f;
  bench_keys k;
  bool tiers = false;  // the pool over three tiers (every pick samples the lowest)
};
// Registered in main (after the BENCHMARK ones); names kept from earlier results.
const pick_case pick_cases[] = {
    {"BM_pick_round_robin", pool::policy::round_robin, bench_filter::all, bench_keys::no},
    {"BM_pick_random", pool::policy::random, bench_filter::all, bench_keys::no},
    {"BM_pick_least_inflight", pool::policy::least_inflight, bench_filter::all, bench_keys::no},
    {"BM_pick_fastest", pool::policy::fastest, bench_filter::all, bench_keys::no},
    {"BM_pick_sticky", pool::policy::round_robin, bench_filter::all, bench_keys::one},
    {"BM_pick_sticky_many_keys", pool::policy::round_robin, bench_filter::all, bench_keys::many},
    {"BM_pick_country_round_robin", pool::policy::round_robin, bench_filter::country, bench_keys::no},
    {"BM_pick_country_random", pool::policy::random, bench_filter::country, bench_keys::no},
    {"BM_pick_country_least_inflight", pool::policy::least_inflight, bench_filter::country, bench_keys::no},
    {"BM_pick_country_fastest", pool::policy::fastest, bench_filter::country, bench_keys::no},
    {"BM_pick_country_sticky", pool::policy::round_robin, bench_filter::country, bench_keys::one},
    {"BM_pick_country_sticky_many_keys", pool::policy::round_robin, bench_filter::country, bench_keys::many},
    {"BM_pick_type_round_robin", pool::policy::round_robin, bench_filter::type, bench_keys::no},
    {"BM_pick_type_random", pool::policy::random, bench_filter::type, bench_keys::no},
    {"BM_pick_type_least_inflight", pool::policy::least_inflight, bench_filter::type, bench_keys::no},
    {"BM_pick_type_fastest", pool::policy::fastest, bench_filter::type, bench_keys::no},
    {"BM_pick_type_sticky_many_keys", pool::policy::round_robin, bench_filter::type, bench_keys::many},
    {"BM_pick_country_type_random", pool::policy::random, bench_filter::country_type, bench_keys::no},
    {"BM_pick_country_type_sticky_many_keys", pool::policy::round_robin, bench_filter::country_type, bench_keys::many},
    {"BM_pick_3tiers_round_robin", pool::policy::round_robin, bench_filter::all, bench_keys::no, true},
    {"BM_pick_3tiers_random", pool::policy::random, bench_filter::all, bench_keys::no, true},
    {"BM_pick_3tiers_least_inflight", pool::policy::least_inflight, bench_filter::all, bench_keys::no, true},
    {"BM_pick_3tiers_sticky_many_keys", pool::policy::round_robin, bench_filter::all, bench_keys::many, true},
    {"BM_pick_3tiers_country_random", pool::policy::random, bench_filter::country, bench_keys::no, true},
};

// Parse and build run on up to 2 threads for a big pool (as the gateway does); the
// _1thread variants pin them to the calling thread.
void bm_parse(benchmark::State& state, unsigned threads) {
  const std::string text = pool_text(g_exits);
  proto::parse_options opts;
  opts.threads = threads;
  for (auto _ : state) {
    auto specs = proto::parse_pool_text(text, "bench.txt", opts);
    benchmark::DoNotOptimize(specs.data());
  }
}
void BM_parse_pool_text(benchmark::State& s) {
  bm_parse(s, 2);
}
void BM_parse_pool_text_1thread(benchmark::State& s) {
  bm_parse(s, 1);
}

void bm_build(benchmark::State& state, unsigned threads) {
  const std::string text = pool_text(g_exits);
  for (auto _ : state) {
    state.PauseTiming();
    auto specs = proto::parse_pool_text(text, "bench.txt");
    state.ResumeTiming();
    auto snap = pool::snapshot::build(std::move(specs), nullptr, {}, threads);
    benchmark::DoNotOptimize(snap.get());
    state.PauseTiming();
    snap.reset();  // freeing 1M exits is not part of build
    state.ResumeTiming();
  }
}
void BM_snapshot_build(benchmark::State& s) {
  bm_build(s, 2);
}
void BM_snapshot_build_1thread(benchmark::State& s) {
  bm_build(s, 1);
}

// A reload of an unchanged file: parse + build against the previous snapshot (every exit carried over);
// the old snapshot's release is not timed (the gateway logs "pool reloaded" before it).
void BM_reload_unchanged(benchmark::State& state) {
  const std::string text = pool_text(g_exits);
  for (auto _ : state) {
    auto snap = pool::snapshot::build(proto::parse_pool_text(text, "bench.txt"), g_snap.get());
    benchmark::DoNotOptimize(snap.get());
    state.PauseTiming();
    snap.reset();
    state.ResumeTiming();
  }
}

// One request's whole pool cost, driver::begin to release (pick, tokens, lease, and for a
// provider line its virtual exit with the username rendered): one ordinary http exit with
// fixed credentials against one http provider line (issue 14: no more per request than an
// ordinary exit of the same scheme). Sticky: 4096 sessions in turn.
std::shared_ptr<const pool::snapshot> small_pool(bool provider) {
  const std::string text =
      provider ? "http://brd-customer-c1-zone-resi:pw@10.0.0.1:33335 provider=brightdata countries=* id=bd\n"
               : "http://brd-customer-c1-zone-resi-country-us:pw@10.0.0.1:33335 country=us id=e\n";
  return pool::snapshot::build(proto::parse_pool_text(text, "bench.txt"));
}

void bm_begin(benchmark::State& state, bool provider, bool sticky) {
  auto snap = small_pool(provider);
  pool::local_state st;
  pool::driver d(pool::policy::round_robin, 42, st, std::chrono::seconds(30));
  std::vector<std::string> keys;
  for (int i = 0; i < 4096; ++i) {
    keys.push_back("alice\x1fs" + std::to_string(i));
  }
  const auto now = std::chrono::steady_clock::now();
  std::size_t i = 0;
  for (auto _ : state) {
    pool::attempt_request r;
    r.f.country = "us";
    r.host = "example.com";
    r.host_outlives_attempt = true;
    if (sticky) {
      r.sticky_key = keys[i++ & 4095];
    }
    auto b = d.begin(snap, r, now);
    benchmark::DoNotOptimize(b.granted.chosen().spec().user.data());
  }
}

void BM_begin_exit_rotate(benchmark::State& s) {
  bm_begin(s, false, false);
}
void BM_begin_provider_rotate(benchmark::State& s) {
  bm_begin(s, true, false);
}
void BM_begin_exit_sticky(benchmark::State& s) {
  bm_begin(s, false, true);
}
void BM_begin_provider_sticky(benchmark::State& s) {
  bm_begin(s, true, true);
}

}  // namespace

BENCHMARK(BM_begin_exit_rotate);
BENCHMARK(BM_begin_provider_rotate);
BENCHMARK(BM_begin_exit_sticky);
BENCHMARK(BM_begin_provider_sticky);
BENCHMARK(BM_sticky_ring_build)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_parse_pool_text)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_parse_pool_text_1thread)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_snapshot_build)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_snapshot_build_1thread)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_reload_unchanged)->Unit(benchmark::kMillisecond)->Iterations(1);

int main(int argc, char** argv) {
  if (const char* e = std::getenv("EXITS")) {
    g_exits = std::strtoull(e, nullptr, 10);
  }
  {
    const long before = rss_kib();
    std::string text = pool_text(g_exits);
    if (const char* f = std::getenv("POOL_FILE")) {
      std::ofstream(f) << text;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto specs = proto::parse_pool_text(text, "bench.txt");
    const double parse_s = secs_since(t0);
    std::string().swap(text);
    t0 = std::chrono::steady_clock::now();
    g_snap = pool::snapshot::build(std::move(specs));
    const double build_s = secs_since(t0);
    std::vector<proto::exit_spec>().swap(specs);
    const long after = rss_kib();
    std::printf(
        "POOLMEM exits=%zu rss_before_kib=%ld rss_after_kib=%ld bytes_per_exit=%.0f parse_s=%.3f build_s=%.3f\n",
        g_snap->size(), before, after,
        static_cast<double>(after - before) * 1024.0 / static_cast<double>(g_snap->size()), parse_s, build_s);
    std::fflush(stdout);
  }
  for (const pick_case& c : pick_cases) {
    benchmark::RegisterBenchmark(c.name, [c](benchmark::State& st) {
      bm_pick(st, c.p, c.f, c.k, c.tiers);
    })->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
