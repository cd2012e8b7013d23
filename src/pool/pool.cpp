#include "pool/pool.hpp"

// Why one file over 600 lines: the three types pool.hpp declares, exit (atomics, health),
// filter (tag matching) and snapshot (the immutable set and its indexes). The snapshot's
// indexes and the filter's matching are two halves of one lookup and change together.

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <exception>
#include <functional>
#include <system_error>
#include <thread>
#include <tuple>

#include "pool/elastic.hpp"
#include "pool/sticky.hpp"

namespace exitpool::pool {

namespace {

constexpr double ewma_alpha = 0.2;

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = lower(c);
  }
  return out;
}

bool has_upper(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; });
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

// An empty filter value matches anything; otherwise compare case-insensitively.
bool field_matches(std::string_view want, std::string_view have) {
  return want.empty() || iequals(want, have);
}

// Everything that defines how an exit is dialled and indexed. `line` is left out:
// moving an unchanged exit within the file must not reset its stats.
bool same_spec(const proto::exit_spec& a, const proto::exit_spec& b) {
  return a.id == b.id && a.scheme == b.scheme && a.host == b.host && a.prefix_len == b.prefix_len && a.port == b.port &&
         a.user == b.user && a.pass == b.pass && a.country == b.country && a.city == b.city && a.type == b.type &&
         a.weight == b.weight && a.tls_verify == b.tls_verify && a.tags == b.tags &&
         (a.provider ? a.provider->source : std::string()) == (b.provider ? b.provider->source : std::string());
}

using tag_index = std::unordered_map<std::string, std::vector<std::uint32_t>>;

// The index list for `value`; null when no exit has it.
const std::vector<std::uint32_t>* lookup(const tag_index& index, const std::string& value) {
  // Filter values normally arrive lower-cased; only allocate when they do not.
  auto it = has_upper(value) ? index.find(to_lower(value)) : index.find(value);
  return it == index.end() ? nullptr : &it->second;
}

// `tier=N`: an optional sign and digits; anything else counts as the default tier.
int parse_tier(const proto::exit_spec& spec) {
  for (const auto& [key, value] : spec.tags) {
    if (!iequals(key, "tier")) {
      continue;
    }
    int tier = 0;
    const char* first = value.data();
    const char* last = value.data() + value.size();
    if (first != last && *first == '+') {
      ++first;
    }
    auto [p, ec] = std::from_chars(first, last, tier);
    return ec == std::errc() && p == last ? tier : 0;
  }
  return 0;
}

}  // namespace

const char* state_name(exit_state s) {
  switch (s) {
    case exit_state::healthy:
      return "healthy";
    case exit_state::ejected:
      return "ejected";
    case exit_state::probing:
      return "probing";
  }
  return "unknown";
}

// ---- exit -------------------------------------------------------------------------------------

exit::exit(proto::exit_spec spec, std::uint32_t index)
    : spec_(std::move(spec)), id_hash_(hash64(spec_.id)), index_(index), tier_(parse_tier(spec_)) {
  if (spec_.provider) {
    family_ = std::make_unique<family>();
  }
}

exit::exit(proto::exit_spec spec, exit& parent, std::uint64_t id_hash)
    : spec_(std::move(spec)), id_hash_(id_hash), index_(parent.index()), tier_(parent.tier()), parent_(&parent) {}

exit::~exit() = default;

exit_state exit::state(time_point now) const {
  const std::int64_t down = down_until_ns_.load(std::memory_order_relaxed);
  if (down == 0) {
    return exit_state::healthy;
  }
  return to_ns(now) < down ? exit_state::ejected : exit_state::probing;
}

bool exit::try_claim_probe(time_point now, std::chrono::milliseconds timeout) {
  const std::int64_t t = std::max<std::int64_t>(1, to_ns(now));  // 0 means free
  const std::int64_t lapse = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  std::int64_t cur = probe_claimed_ns_.load(std::memory_order_relaxed);
  do {
    if (cur != 0 && t - cur < lapse) {
      return false;
    }
  } while (!probe_claimed_ns_.compare_exchange_weak(cur, t, std::memory_order_relaxed));
  return true;
}

std::optional<time_point> exit::probe_busy_until(time_point now, std::chrono::milliseconds timeout) const {
  const std::int64_t cur = probe_claimed_ns_.load(std::memory_order_relaxed);
  if (cur == 0) {
    return std::nullopt;
  }
  const std::int64_t until = cur + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  if (to_ns(now) >= until) {
    return std::nullopt;
  }
  return from_ns(until);
}

void exit::apply_limits(const limits_config& c) {
  limiter_.configure(c.per_exit_rate, c.burst);
  concurrency_cap_.store(std::max(0, c.per_exit_concurrency), std::memory_order_relaxed);
}

void exit::hold_down_until(time_point until) {
  const std::int64_t want = to_ns(until);
  std::int64_t cur = down_until_ns_.load(std::memory_order_relaxed);
  while (cur < want && !down_until_ns_.compare_exchange_weak(cur, want, std::memory_order_relaxed)) {
  }
}

bool exit::usable(time_point now) const {
  return to_ns(now) >= down_until_ns_.load(std::memory_order_relaxed);
}

time_point exit::down_until() const {
  return time_point(std::chrono::duration_cast<clock::duration>(
      std::chrono::nanoseconds(down_until_ns_.load(std::memory_order_relaxed))));
}

double exit::ewma_latency_us() const {
  const std::int64_t ns = ewma_latency_ns_.load(std::memory_order_relaxed);
  return ns < 0 ? -1.0 : static_cast<double>(ns) / 1000.0;
}

void exit::report(const outcome& o, time_point now, const health_config& cfg) {
  if (o.ok) {
    successes_.fetch_add(1, std::memory_order_relaxed);
    consecutive_failures_.store(0, std::memory_order_relaxed);
    ejections_.store(0, std::memory_order_relaxed);
    // A success ends any cool-down early: the exit was picked anyway (panic fallback) and works.
    // It also ends a probe.
    down_until_ns_.store(0, std::memory_order_relaxed);
    probe_claimed_ns_.store(0, std::memory_order_relaxed);
    if (!o.sample) {
      return;
    }

    const auto sample =
        static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(o.latency).count());
    std::int64_t old = ewma_latency_ns_.load(std::memory_order_relaxed);
    std::int64_t next = 0;
    do {
      next = old < 0 ? sample : old + static_cast<std::int64_t>(ewma_alpha * static_cast<double>(sample - old));
    } while (!ewma_latency_ns_.compare_exchange_weak(old, next, std::memory_order_relaxed));
    return;
  }

  failures_.fetch_add(1, std::memory_order_relaxed);
  auto cooldown_after = [&cfg](int previous_ejections) {
    auto cooldown = cfg.base_cooldown;
    for (int i = 0; i < previous_ejections && cooldown < cfg.max_cooldown; ++i) {
      cooldown *= 2;
    }
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::min(cooldown, cfg.max_cooldown)).count();
  };
  std::int64_t down = down_until_ns_.load(std::memory_order_relaxed);
  if (down != 0 && to_ns(now) >= down) {
    // Probing and it failed: straight back into a (longer) cool-down. Only the thread
    // that moves down_until ejects, so concurrent failures eject once.
    const int previous_ejections = ejections_.load(std::memory_order_relaxed);
    if (down_until_ns_.compare_exchange_strong(down, to_ns(now) + cooldown_after(previous_ejections),
                                               std::memory_order_relaxed)) {
      ejections_.fetch_add(1, std::memory_order_relaxed);
      consecutive_failures_.store(0, std::memory_order_relaxed);
      probe_claimed_ns_.store(0, std::memory_order_relaxed);
    }
    return;
  }
  int seen = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (seen < cfg.failures_to_eject) {
    return;
  }
  // Only the thread that resets the streak ejects, so concurrent failures eject once.
  if (!consecutive_failures_.compare_exchange_strong(seen, 0, std::memory_order_relaxed)) {
    return;
  }
  const int previous_ejections = ejections_.fetch_add(1, std::memory_order_relaxed);
  down_until_ns_.store(to_ns(now) + cooldown_after(previous_ejections), std::memory_order_relaxed);
}

// ---- filter -----------------------------------------------------------------------------------

namespace {

// The value of tag `key` (lower-case) on `spec`; "" when it has none.
std::string_view tag_value(const proto::exit_spec& spec, std::string_view key) {
  for (const auto& [k, v] : spec.tags) {
    if (k == key) {
      return v;
    }
  }
  return {};
}

}  // namespace

bool filter::matches(const exit& e) const {
  const auto& s = e.spec();
  if (!field_matches(type, s.type)) {
    return false;
  }
  if (s.provider) {
    return s.provider->serves(country, city, state, asn);
  }
  return field_matches(country, s.country) && field_matches(city, s.city) &&
         (state.empty() || field_matches(state, tag_value(s, "state"))) &&
         (asn.empty() || field_matches(asn, tag_value(s, "asn")));
}

std::string filter::describe() const {
  if (empty()) {
    return "any";
  }
  std::string out;
  auto add = [&out](std::string_view key, const std::string& value) {
    if (value.empty()) {
      return;
    }
    if (!out.empty()) {
      out += ' ';
    }
    out += key;
    out += '=';
    out += value;
  };
  add("country", country);
  add("city", city);
  add("type", type);
  add("state", state);
  add("asn", asn);
  return out;
}

// ---- snapshot ---------------------------------------------------------------------------------

namespace {

constexpr std::uint64_t slot_tag(std::uint64_t hash) {
  return hash & ~std::uint64_t{0xffffffffu};
}
constexpr std::uint32_t slot_index(std::uint64_t slot) {
  return static_cast<std::uint32_t>(slot) - 1;
}

// Appends index i to the list of `value` (lower-cased). Pools are often grouped by
// country or type: the last value's list is remembered, so a run of equal values
// costs one comparison each.
struct index_adder {
  tag_index& index;
  std::string last;
  std::vector<std::uint32_t>* list = nullptr;

  void add(const std::string& value, std::uint32_t i) {
    if (value.empty()) {
      return;
    }
    if (list == nullptr || value != last) {
      last = value;
      list = &index[has_upper(value) ? to_lower(value) : value];
    }
    list->push_back(i);
  }
};

}  // namespace

std::int64_t snapshot::index_of(std::string_view id, std::uint64_t hash) const {
  if (id_slots_.empty()) {
    return -1;
  }
  const std::size_t mask = id_slots_.size() - 1;
  for (std::size_t k = hash & mask;; k = (k + 1) & mask) {
    const std::uint64_t v = id_slots_[k];
    if (v == 0) {
      return -1;
    }
    if (slot_tag(v) == slot_tag(hash) && exits_[slot_index(v)]->id() == id) {
      return slot_index(v);
    }
  }
}

std::shared_ptr<const snapshot> snapshot::build(std::vector<proto::exit_spec> specs, const snapshot* previous,
                                                const limits_config& limits, unsigned threads) {
  auto s = std::make_shared<snapshot>();
  std::vector<std::uint64_t> hashes(specs.size());
  for (std::size_t k = 0; k < specs.size(); ++k) {
    hashes[k] = hash64(specs[k].id);
  }

  // Every id into the table, exit index = position in `specs`. The table is far bigger
  // than the caches: prefetch the slots a few ids ahead.
  constexpr std::size_t ahead = 16;
  auto place_ids = [&] {
    const std::size_t n = specs.size();
    s->id_slots_.assign(std::bit_ceil(std::max<std::size_t>(16, n * 2)), 0);
    const std::size_t mask = s->id_slots_.size() - 1;
    std::vector<bool> dropped;
    for (std::size_t k = 0; k < n; ++k) {
      if (k + ahead < n) {
        __builtin_prefetch(&s->id_slots_[hashes[k + ahead] & mask], 1);
      }
      const std::uint64_t h = hashes[k];
      std::size_t slot = h & mask;
      bool duplicate = false;
      for (; s->id_slots_[slot] != 0; slot = (slot + 1) & mask) {
        const std::uint64_t v = s->id_slots_[slot];
        if (slot_tag(v) == slot_tag(h) && specs[slot_index(v)].id == specs[k].id) {
          duplicate = true;
          break;
        }
      }
      if (duplicate) {
        dropped.resize(n);
        dropped[k] = true;
      } else {
        s->id_slots_[slot] = slot_tag(h) | (static_cast<std::uint64_t>(k) + 1);
      }
    }
    return dropped;
  };
  // Duplicate ids (the pool parser rejects them; direct callers might not): the first
  // wins, the rest are dropped, and the table is made again over what is left.
  if (const auto dropped = place_ids(); !dropped.empty()) {
    std::size_t kept = 0;
    for (std::size_t k = 0; k < specs.size(); ++k) {
      if (dropped[k]) {
        continue;
      }
      if (kept != k) {  // no self-move: it would empty the strings
        specs[kept] = std::move(specs[k]);
        hashes[kept] = hashes[k];
      }
      ++kept;
    }
    specs.resize(kept);
    hashes.resize(kept);
    place_ids();
  }

  // The exits, carried over or new, in up to `threads` runs of indices at once (each run
  // with tag indexes of its own, merged in order below).
  const std::size_t n = specs.size();
  s->exits_.resize(n);
  s->all_.resize(n);
  struct run {
    std::size_t begin = 0;
    std::size_t end = 0;
    tag_index countries, cities, types;
    std::size_t carried = 0;
    bool single_tier = true;
    bool uniform_weight = true;  // every weight in this run equals the run's first
    double max_weight = 0;
    std::exception_ptr failure;
  };
  constexpr std::size_t min_exits_per_thread = 50000;
  const std::size_t n_runs = std::clamp<std::size_t>(n / min_exits_per_thread, 1, std::max(1u, threads));
  std::vector<run> runs(n_runs);
  for (std::size_t r = 0; r < n_runs; ++r) {
    runs[r].begin = n * r / n_runs;
    runs[r].end = n * (r + 1) / n_runs;
  }
  const bool have_previous = previous != nullptr && !previous->id_slots_.empty();
  const std::size_t prev_mask = have_previous ? previous->id_slots_.size() - 1 : 0;
  auto make_run = [&](run& out) {
    try {
      index_adder countries{out.countries}, cities{out.cities}, types{out.types};
      for (std::size_t k = out.begin; k < out.end; ++k) {
        if (have_previous && k + ahead < out.end) {
          __builtin_prefetch(&previous->id_slots_[hashes[k + ahead] & prev_mask]);
        }
        auto& spec = specs[k];
        const auto i = static_cast<std::uint32_t>(k);
        std::shared_ptr<exit> e;
        if (have_previous) {
          const std::int64_t j = previous->index_of(spec.id, hashes[k]);
          if (j >= 0 && same_spec(previous->exits_[static_cast<std::size_t>(j)]->spec(), spec)) {
            e = previous->exits_[static_cast<std::size_t>(j)];
            ++out.carried;
          }
        }
        if (!e) {
          e = std::make_shared<exit>(std::move(spec), i);
        }
        if (const auto& p = e->spec().provider) {
          // A provider line's own limits bound the whole line; the per-exit ones apply to
          // each of its virtual exits (pool/elastic.hpp).
          e->apply_limits({.per_exit_rate = p->rate,
                           .burst = std::max(1.0, limits.burst),
                           .per_exit_concurrency = p->max_sessions});
        } else {
          e->apply_limits(limits);
        }
        countries.add(e->spec().country, i);
        cities.add(e->spec().city, i);
        types.add(e->spec().type, i);
        out.single_tier = out.single_tier && (k == out.begin || e->tier() == s->exits_[out.begin]->tier());
        // Weight facts for the selector's sampling, gathered here rather than in a pass of their own.
        const double w = std::max(e->spec().weight, 0.0);
        out.uniform_weight =
            out.uniform_weight && (k == out.begin || w == std::max(s->exits_[out.begin]->spec().weight, 0.0));
        out.max_weight = std::max(out.max_weight, w);
        s->all_[k] = i;
        s->exits_[k] = std::move(e);
      }
    } catch (...) {
      out.failure = std::current_exception();
    }
  };
  {
    std::vector<std::thread> workers;
    for (std::size_t r = 1; r < n_runs; ++r) {
      try {
        workers.emplace_back(make_run, std::ref(runs[r]));
      } catch (const std::system_error&) {
        make_run(runs[r]);  // no thread to be had: this run on this thread
      }
    }
    make_run(runs[0]);
    for (auto& t : workers) {
      t.join();
    }
  }
  for (const auto& r : runs) {
    if (r.failure) {
      std::rethrow_exception(r.failure);
    }
  }
  // Runs cover ascending indices, so appending keeps every list sorted.
  s->by_country_ = std::move(runs[0].countries);
  s->by_city_ = std::move(runs[0].cities);
  s->by_type_ = std::move(runs[0].types);
  for (auto& r : runs) {
    s->carried_over_ += r.carried;
    s->single_tier_ = s->single_tier_ && r.single_tier &&
                      (r.begin == r.end || s->exits_[r.begin]->tier() == s->exits_.front()->tier());
    s->uniform_weight_ = s->uniform_weight_ && r.uniform_weight &&
                         (r.begin == r.end || std::max(s->exits_[r.begin]->spec().weight, 0.0) ==
                                                  std::max(s->exits_.front()->spec().weight, 0.0));
    s->max_weight_ = std::max(s->max_weight_, r.max_weight);
    if (&r == &runs[0]) {
      continue;
    }
    const std::pair<tag_index*, tag_index*> merges[] = {
        {&s->by_country_, &r.countries}, {&s->by_city_, &r.cities}, {&s->by_type_, &r.types}};
    for (auto [into, from] : merges) {
      for (auto& [value, list] : *from) {
        auto& to = (*into)[value];
        to.insert(to.end(), list.begin(), list.end());
      }
    }
  }
  s->limits_ = limits;
  s->index_provider_lines();
  static std::atomic<std::uint64_t> next_serial{1};
  s->serial_ = next_serial.fetch_add(1, std::memory_order_relaxed);
  return s;
}

// Provider lines are indexed under every value they declare (countries=us,de), and those
// that serve any value (countries=*) under every value the pool has, and kept apart for
// values no exit has: candidates() then still lists only exits that match that field.
void snapshot::index_provider_lines() {
  for (std::uint32_t i = 0; i < exits_.size(); ++i) {
    if (exits_[i]->elastic()) {
      elastic_.push_back(i);
    }
  }
  if (elastic_.empty()) {
    return;
  }
  auto index = [&](tag_index& by, std::vector<std::uint32_t>& any_list, auto declared) {
    // Declared values first, so that a line serving any value is listed under them too.
    for (const bool wildcard : {false, true}) {
      for (const std::uint32_t i : elastic_) {
        auto [any, values, serves] = declared(*exits_[i]->spec().provider);
        if (!serves || any != wildcard) {
          continue;
        }
        if (!any) {
          for (const auto& v : *values) {
            by[v].push_back(i);
          }
          continue;
        }
        any_list.push_back(i);
        for (auto& [value, list] : by) {
          list.push_back(i);
        }
      }
    }
    for (auto& [value, list] : by) {
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
    }
  };
  index(by_country_, any_country_, [](const proto::provider_line& p) {
    return std::tuple(p.any_country, &p.countries, p.uses(proto::placeholder::country));
  });
  index(by_city_, any_city_, [](const proto::provider_line& p) {
    return std::tuple(p.any_city, &p.cities, p.uses(proto::placeholder::city));
  });
}

std::shared_ptr<exit> snapshot::find_virtual(std::uint64_t id_hash, time_point now) const {
  for (const std::uint32_t i : elastic_) {
    if (auto v = exits_[i]->virtuals()->find(id_hash, now)) {
      return v;
    }
  }
  return nullptr;
}

const exit* snapshot::find(std::string_view id) const {
  const std::int64_t i = index_of(id, hash64(id));
  return i < 0 ? nullptr : exits_[static_cast<std::size_t>(i)].get();
}

exit* snapshot::find_hash(std::uint64_t id_hash) const {
  if (id_slots_.empty()) {
    return nullptr;
  }
  const std::size_t mask = id_slots_.size() - 1;
  for (std::size_t k = id_hash & mask;; k = (k + 1) & mask) {
    const std::uint64_t v = id_slots_[k];
    if (v == 0) {
      return nullptr;
    }
    if (slot_tag(v) == slot_tag(id_hash) && exits_[slot_index(v)]->id_hash() == id_hash) {
      return exits_[slot_index(v)].get();
    }
  }
}

std::span<const std::uint32_t> snapshot::candidates(const filter& f) const {
  if (f.country.empty() && f.city.empty() && f.type.empty()) {
    return all_;  // no indexed field (state and asn are checked by filter::matches)
  }
  const std::vector<std::uint32_t>* best = nullptr;
  const std::vector<std::uint32_t>* none = nullptr;
  const std::tuple<const tag_index*, const std::string*, const std::vector<std::uint32_t>*> fields[] = {
      {&by_country_, &f.country, &any_country_}, {&by_city_, &f.city, &any_city_}, {&by_type_, &f.type, none}};
  for (const auto& [index, value, any] : fields) {
    if (value->empty()) {
      continue;
    }
    const auto* list = lookup(*index, *value);
    if (list == nullptr && any != nullptr && !any->empty()) {
      list = any;  // only provider lines that serve any value have it
    }
    if (list == nullptr) {
      return {};  // no exit has this tag value: nothing can match
    }
    if (best == nullptr || list->size() < best->size()) {
      best = list;
    }
  }
  return *best;
}

}  // namespace exitpool::pool
