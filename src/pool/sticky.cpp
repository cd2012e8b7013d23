#include "pool/sticky.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace exitpool::pool {

namespace {

constexpr std::uint64_t golden = 0x9E3779B97F4A7C15ULL;
constexpr std::uint64_t c1 = 0x87C37B91114253D5ULL;
constexpr std::uint64_t c2 = 0x4CF5AD432745937FULL;

constexpr std::uint64_t rotl(std::uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
constexpr std::uint64_t fmix64(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xFF51AFD7ED558CCDULL;
  k ^= k >> 33;
  k *= 0xC4CEB9FE1A85EC53ULL;
  k ^= k >> 33;
  return k;
}

// Little-endian load byte by byte, so the hash is the same on every host.
std::uint64_t load_le(const unsigned char* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  }
  return v;
}

std::uint64_t mix_block(std::uint64_t k) {
  k *= c1;
  k = rotl(k, 31);
  k *= c2;
  return k;
}

}  // namespace

// One lane of MurmurHash3-x64 style block mixing plus its finalizer. Stable across
// processes, builds and hosts: sticky sessions and shard choices depend on it.
std::uint64_t hash64(std::string_view data, std::uint64_t seed) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t n = data.size();
  std::uint64_t h = (seed + golden) ^ (static_cast<std::uint64_t>(n) * c1);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    h ^= mix_block(load_le(p + i, 8));
    h = rotl(h, 27) * 5 + 0x52DCE729;
  }
  if (i < n) {
    h ^= mix_block(load_le(p + i, n - i));
  }
  h ^= static_cast<std::uint64_t>(n);
  return fmix64(h);
}

std::uint64_t mix64(std::uint64_t a, std::uint64_t b) {
  return fmix64(a ^ fmix64(b + golden));
}

double rendezvous_score(std::uint64_t key_hash, std::uint64_t exit_hash, double weight) {
  if (!(weight > 0.0)) {
    return 0.0;  // never beats an exit with a positive weight
  }
  const std::uint64_t h = mix64(key_hash, exit_hash);
  // Top 53 bits, offset by half a step: u is strictly inside (0, 1), so log(u) < 0.
  const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
  return -weight / std::log(u);
}

const char* session_wait_name(session_wait w) {
  switch (w) {
    case session_wait::none:
      return "none";
    case session_wait::rate_limit:
      return "rate_limit";
    case session_wait::host_rate_limit:
      return "host_rate_limit";
    case session_wait::concurrency:
      return "concurrency";
  }
  return "unknown";
}

const char* session_move_name(session_move m) {
  switch (m) {
    case session_move::none:
      return "none";
    case session_move::ejected:
      return "ejected";
    case session_move::banned:
      return "banned";
    case session_move::removed:
      return "removed";
    case session_move::dial_failed:
      return "dial_failed";
    case session_move::busy:
      return "busy";
  }
  return "unknown";
}

// ---- session_table ----------------------------------------------------------------------------

session_table::session_table(std::size_t max_keys) : per_stripe_(std::max<std::size_t>(1, max_keys / 64)) {}

session_info session_table::lookup(std::string_view key, std::chrono::seconds ttl, time_point now) {
  stripe& s = stripes_[hash64(key) & (stripes_.size() - 1)];
  std::string k(key);  // built before taking the lock
  std::lock_guard lock(s.mu);
  auto it = s.map.find(k);
  const bool inserted = it == s.map.end();
  if (inserted) {
    if (s.map.size() >= per_stripe_) {
      // Full: make room from what expired (the sweeper may not have run yet), never
      // from live sessions.
      std::erase_if(s.map, [now](const auto& kv) { return now >= kv.second.expires; });
      if (s.map.size() >= per_stripe_) {
        return {.refused = true};
      }
    }
    it = s.map.emplace(std::move(k), entry{}).first;
  }
  entry& e = it->second;
  if (inserted) {
    // Generation 0 for a new key, so every process of a fleet starts a session on
    // the same exit. (A key swept after expiry restarts at 0 when it comes back.)
    e.generation = 0;
    e.expires = now + ttl;
    return {e.generation, e.anchor, true};
  }
  if (now >= e.expires) {
    ++e.generation;
    e.anchor = 0;
    e.expires = now + ttl;
    return {e.generation, e.anchor, true};
  }
  return {e.generation, e.anchor, false};
}

void session_table::adopt(std::string_view key, std::uint64_t generation, std::uint64_t exit_hash, time_point expires) {
  stripe& s = stripes_[hash64(key) & (stripes_.size() - 1)];
  std::string k(key);
  std::lock_guard lock(s.mu);
  auto [it, inserted] = s.map.try_emplace(std::move(k));
  entry& e = it->second;
  if (!inserted && e.generation > generation) {
    return;
  }
  // No anchor known elsewhere (a claim's answer) keeps the one set here meanwhile.
  if (exit_hash != 0 || inserted || e.generation != generation) {
    e.anchor = exit_hash;
  }
  e.generation = generation;
  e.expires = expires;
}

void session_table::anchor(std::string_view key, std::uint64_t generation, std::uint64_t exit_hash) {
  stripe& s = stripes_[hash64(key) & (stripes_.size() - 1)];
  const std::string k(key);  // only when a session gets or changes its exit: rare
  std::lock_guard lock(s.mu);
  auto it = s.map.find(k);
  if (it != s.map.end() && it->second.generation == generation) {
    it->second.anchor = exit_hash;
  }
}

std::size_t session_table::sweep(time_point now) {
  std::size_t remaining = 0;
  for (auto& s : stripes_) {
    std::lock_guard lock(s.mu);
    std::erase_if(s.map, [now](const auto& kv) { return now >= kv.second.expires; });
    remaining += s.map.size();
  }
  return remaining;
}

std::size_t session_table::size() const {
  std::size_t n = 0;
  for (const auto& s : stripes_) {
    std::lock_guard lock(s.mu);
    n += s.map.size();
  }
  return n;
}

}  // namespace exitpool::pool
