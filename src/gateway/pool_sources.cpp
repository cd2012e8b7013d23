#include "gateway/pool_sources.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <random>
#include <stdexcept>

#include "net/http_get.hpp"
#include "pool/pool_file.hpp"

namespace exitpool::gateway {

pool_sources::pool_sources(std::vector<pool::source_spec> specs, std::string ca_file) : ca_file_(std::move(ca_file)) {
  entries_.reserve(specs.size());
  for (auto& s : specs) {
    entries_.push_back(entry{std::move(s), {}, 0, false});
  }
}

pool_sources::~pool_sources() {
  stop();
}

pool::fetch_decision pool_sources::fetch(entry& e, double jitter01) {
  net::http_get_request req;
  {
    std::lock_guard lk(mu_);
    req.headers = pool::conditional_headers(e.state);
  }
  req.url = e.spec.request_url();
  if (!e.spec.key_header.empty()) {
    req.headers.push_back(e.spec.key_header + ": " + e.spec.key);
  }
  req.timeout = e.spec.timeout;
  req.ca_file = ca_file_;
  const auto result = net::http_get(req);
  std::lock_guard lk(mu_);
  return pool::apply_fetch(e.state, e.spec, result, pool::clock::now(), jitter01);
}

void pool_sources::fetch_all_once() {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0, 1);
  for (auto& e : entries_) {
    if (!e.spec.is_url()) {
      continue;
    }
    const auto d = fetch(e, jitter(rng));
    if (d.verdict == pool::fetch_verdict::failed) {
      throw std::runtime_error(fmt::format("pool source {}", d.error));
    }
  }
}

pool::merged_pool pool_sources::collect() {
  std::vector<pool::named_list> lists;
  lists.reserve(entries_.size());
  for (auto& e : entries_) {
    if (e.spec.is_url()) {
      std::lock_guard lk(mu_);
      lists.push_back({e.spec.name(), e.state.exits});
      continue;
    }
    auto& st = e.state;
    try {
      const std::string text = pool::read_pool_file(e.spec.location);
      lists.push_back(
          {e.spec.name(), proto::parse_pool_list(text, e.spec.location, e.spec.defaults, e.spec.allow_empty)});
    } catch (const std::exception& ex) {
      std::lock_guard lk(mu_);
      ++st.failures;
      ++st.fetches_failed;
      st.last_error = ex.what();
      st.last_attempt = pool::clock::now();
      throw;
    }
    std::lock_guard lk(mu_);
    e.file_exits = lists.back().exits.size();
    st.failures = 0;
    st.last_error.clear();
    st.last_attempt = st.last_success = pool::clock::now();
    ++st.fetches_changed;
  }
  return pool::merge_sources(std::move(lists));
}

std::vector<std::string> pool_sources::files() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) {
    if (!e.spec.is_url()) {
      out.push_back(e.spec.location);
    }
  }
  return out;
}

bool pool_sources::has_urls() const {
  for (const auto& e : entries_) {
    if (e.spec.is_url()) {
      return true;
    }
  }
  return false;
}

std::string pool_sources::describe() const {
  std::string out;
  for (const auto& e : entries_) {
    if (!out.empty()) {
      out += " + ";
    }
    out += e.spec.name();
  }
  return out;
}

void pool_sources::start(std::function<void(const std::string&)> on_change) {
  if (!has_urls() || thread_.joinable()) {
    return;
  }
  on_change_ = std::move(on_change);
  thread_ = std::thread([this] { run(); });
}

void pool_sources::refresh_now() {
  std::lock_guard lk(mu_);
  for (auto& e : entries_) {
    e.forced = e.spec.is_url();
  }
  wake_.notify_all();
}

void pool_sources::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void pool_sources::run() {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0, 1);
  std::unique_lock lk(mu_);
  while (!stopping_) {
    const auto now = pool::clock::now();
    entry* due = nullptr;
    // Waits are capped so that a clock oddity never parks the thread for good.
    auto wake_at = now + std::chrono::minutes(10);
    for (auto& e : entries_) {
      if (!e.spec.is_url()) {
        continue;
      }
      if (e.forced || e.state.next_fetch <= now) {
        due = &e;
        break;
      }
      wake_at = std::min(wake_at, e.state.next_fetch);
    }
    if (due == nullptr) {
      wake_.wait_until(lk, wake_at);
      continue;
    }
    due->forced = false;
    const std::size_t before = due->state.exits.size();
    lk.unlock();
    const auto d = fetch(*due, jitter(rng));
    const auto name = due->spec.name();
    lk.lock();
    const std::size_t kept = due->state.exits.size();
    const auto next_s = std::chrono::duration<double>(due->state.next_fetch - pool::clock::now()).count();
    const int failures = due->state.failures;
    lk.unlock();
    switch (d.verdict) {
      case pool::fetch_verdict::changed:
        spdlog::info("pool source {}: new list of {} exits (was {}): reloading", name, kept, before);
        if (on_change_) {
          on_change_(name);
        }
        break;
      case pool::fetch_verdict::unchanged:
        spdlog::debug("pool source {}: unchanged", name);
        break;
      case pool::fetch_verdict::failed:
        spdlog::warn(
            "pool source fetch failed ({} in a row), the last good list of {} exits stays; next try in "
            "{:.1f} s: {}",
            failures, kept, next_s, d.error);
        break;
    }
    lk.lock();
  }
}

std::vector<pool::source_status> pool_sources::status(pool::time_point now) const {
  std::lock_guard lk(mu_);
  std::vector<pool::source_status> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) {
    auto s = pool::status_of(e.spec, e.state, now);
    if (!s.url) {
      s.exits = e.file_exits;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace exitpool::gateway
