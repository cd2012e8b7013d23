#include "crawl/frontier.hpp"

#include <algorithm>
#include <limits>

#include "crawl/url_norm.hpp"

namespace exitpool::crawl {

namespace {
constexpr auto later = [](const auto& a, const auto& b) { return a.first > b.first; };
}  // namespace

frontier::frontier(frontier_config c, std::size_t expected_urls) : cfg_(std::move(c)), seen_(expected_urls) {
  cfg_.window = std::max(1, cfg_.window);
  cfg_.robots_tries = std::max(1, cfg_.robots_tries);
  if (cfg_.queue_memory > 0 && !cfg_.spill_path.empty()) {
    spill_ = std::make_unique<spill_file>(cfg_.spill_path);
  }
}

void frontier::push(host& h, queued_url u) {
  spill_queue::limits l;
  if (spill_) {
    // Under the bound, a host keeps everything in memory; over it, its first `window`
    // (what the shards will want next).
    const bool over = queued_ - spilled_ >= cfg_.queue_memory;
    l.memory_items = over ? static_cast<std::size_t>(cfg_.window) : std::numeric_limits<std::size_t>::max();
    l.block_items = std::max<std::size_t>(1, cfg_.spill_block);
  }
  const std::size_t before = h.queue.spilled();
  h.queue.push(std::move(u), spill_.get(), l);
  spilled_ += h.queue.spilled() - before;
  spilled_total_ += h.queue.spilled() - before;
  ++queued_;
}

queued_url frontier::pop(host& h) {
  const std::size_t before = h.queue.spilled();
  queued_url u = h.queue.pop(spill_.get());
  spilled_ -= before - h.queue.spilled();
  --queued_;
  return u;
}

work_item frontier::work_of(const host& h, queued_url u) const {
  work_item w;
  w.url = std::move(u.url);
  w.key = h.key;
  w.host = h.host;
  w.depth = u.depth;
  w.hops = u.hops;
  w.lease = u.lease;
  return w;
}

frontier::host& frontier::host_of(std::string_view key, std::string_view hostname) {
  auto it = hosts_.find(key);
  if (it == hosts_.end()) {
    auto h = std::make_unique<host>();
    h->key = std::string(key);
    h->host = std::string(hostname);
    const std::string_view k = h->key;  // the map's key is a view of the record's own (heap-stable)
    it = hosts_.emplace(k, std::move(h)).first;
  }
  return *it->second;
}

void frontier::mark_dirty(host& h) {
  if (!h.in_dirty) {
    h.in_dirty = true;
    dirty_.push_back(&h);
  }
}

bool frontier::add(std::string url, std::uint32_t depth, std::uint8_t hops) {
  if (!seen_.insert(fetch::fingerprint(url))) {
    return false;
  }
  const url_key k = split_url(url);
  const std::string key = std::string(k.scheme) + "://" + std::string(k.authority);
  host& h = host_of(key, k.host);
  push(h, queued_url{std::move(url), 0, depth, hops});
  mark_dirty(h);
  return true;
}

double frontier::delay_of(const host& h) const {
  return h.policy.access == robots_access::rules && h.policy.rules.crawl_delay()
             ? std::min(*h.policy.rules.crawl_delay(), cfg_.max_crawl_delay_s)
             : 0.0;
}

double frontier::crawl_delay(std::string_view key) const {
  auto it = hosts_.find(key);
  return it == hosts_.end() ? 0.0 : delay_of(*it->second);
}

void frontier::add_leased(work_item w) {
  const url_key k = split_url(w.url);
  host& h = host_of(std::string(k.scheme) + "://" + std::string(k.authority), k.host);
  push(h, queued_url{std::move(w.url), w.lease, w.depth, w.hops});
  mark_dirty(h);
}

void frontier::serve(host& h, time_point now, std::vector<work_item>& out) {
  if (h.queue.empty() || h.state == robots_state::fetching) {
    return;
  }
  if (cfg_.ignore_robots) {
    h.state = robots_state::known;
    h.policy.access = robots_access::allow_all;
    h.valid_until = time_point::max();
  }
  if (h.state == robots_state::known && h.policy.access == robots_access::disallow_all &&
      h.failures >= cfg_.robots_tries) {
    unreachable_ += h.queue.size();
    while (!h.queue.empty()) {
      queued_url u = pop(h);
      if (u.lease != 0) {
        dropped_.push_back(work_of(h, std::move(u)));
      }
    }
    return;
  }
  if (h.state == robots_state::unknown || now >= h.valid_until) {
    work_item r;
    r.url = h.key + "/robots.txt";
    r.key = h.key;
    r.host = h.host;
    r.robots = true;
    h.state = robots_state::fetching;
    ++robots_out_;
    out.push_back(std::move(r));
    return;
  }
  if (h.policy.access == robots_access::disallow_all) {
    return;  // a timer brings it back at valid_until
  }
  const double delay = delay_of(h);
  while (!h.queue.empty() && h.outstanding < cfg_.window && (cfg_.max_pages == 0 || handed_ < cfg_.max_pages)) {
    work_item w = work_of(h, pop(h));
    if (h.policy.access == robots_access::rules && !h.policy.rules.allowed(split_url(w.url).path_query)) {
      ++disallowed_;
      if (w.lease != 0) {
        dropped_.push_back(std::move(w));
      }
      continue;
    }
    w.crawl_delay_s = delay;
    ++h.outstanding;
    ++outstanding_;
    ++handed_;
    out.push_back(std::move(w));
  }
}

void frontier::next(time_point now, std::vector<work_item>& out) {
  while (!timers_.empty() && timers_.front().first <= now) {
    std::pop_heap(timers_.begin(), timers_.end(), later);
    mark_dirty(*timers_.back().second);
    timers_.pop_back();
  }
  for (auto& w : sitemap_queue_) {
    out.push_back(std::move(w));
  }
  sitemap_queue_.clear();
  std::vector<host*> hosts;
  hosts.swap(dirty_);
  for (host* h : hosts) {
    h->in_dirty = false;
    serve(*h, now, out);
  }
}

void frontier::page_done(std::string_view key) {
  auto it = hosts_.find(key);
  if (it == hosts_.end() || it->second->outstanding == 0) {
    return;
  }
  --it->second->outstanding;
  --outstanding_;
  mark_dirty(*it->second);
}

void frontier::robots_fetched(std::string_view key, long status, std::string_view body, time_point now) {
  auto it = hosts_.find(key);
  if (it == hosts_.end() || it->second->state != robots_state::fetching) {
    return;
  }
  host& h = *it->second;
  --robots_out_;
  h.state = robots_state::known;
  h.policy = robots_policy_of(status, body, cfg_.agent);
  if (h.policy.access == robots_access::disallow_all) {
    ++h.failures;
    const auto wait = cfg_.robots_retry * (1 << std::min(h.failures - 1, 10));
    h.valid_until = now + wait;
    timers_.emplace_back(h.valid_until, &h);
    std::push_heap(timers_.begin(), timers_.end(), later);
  } else {
    h.failures = 0;
    h.valid_until = now + cfg_.robots_ttl;
  }
  if (cfg_.sitemaps && !h.sitemaps_read && h.policy.access == robots_access::rules) {
    h.sitemaps_read = true;
    const auto& maps = h.policy.rules.sitemaps();
    for (std::size_t i = 0; i < maps.size() && i < 10; ++i) {
      add_sitemap(maps[i]);
    }
  }
  mark_dirty(h);
}

bool frontier::add_sitemap(std::string_view url) {
  auto u = normalize_url(url, normalize_options{});
  if (!u || sitemaps_seen_.size() >= 1000 || !sitemaps_seen_.emplace(*u, true).second) {
    return false;
  }
  const url_key k = split_url(*u);
  work_item w;
  w.key = std::string(k.scheme) + "://" + std::string(k.authority);
  w.host = std::string(k.host);
  w.url = std::move(*u);
  w.sitemap = true;
  sitemap_queue_.push_back(std::move(w));
  ++sitemaps_out_;
  return true;
}

std::optional<time_point> frontier::next_wake() const {
  return timers_.empty() ? std::nullopt : std::optional<time_point>(timers_.front().first);
}

bool frontier::finished() const {
  const bool budget_spent = cfg_.max_pages != 0 && handed_ >= cfg_.max_pages;
  return outstanding_ == 0 && robots_out_ == 0 && sitemaps_out_ == 0 && (queued_ == 0 || budget_spent);
}

frontier_counts frontier::counts() const {
  frontier_counts c;
  c.discovered = seen_.size();
  c.handed = handed_;
  c.disallowed = disallowed_;
  c.robots_unreachable = unreachable_;
  c.queued = queued_;
  c.spilled = spilled_;
  c.spilled_total = spilled_total_;
  c.outstanding = outstanding_ + robots_out_;
  return c;
}

}  // namespace exitpool::crawl
