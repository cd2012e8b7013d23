// The crawl's run: the coordinator around fetch's runner, and the result hook the shards
// call (crawl/crawler.hpp has the picture). Over 600 lines because the coordinator's
// phases (seeds, robots, sitemaps, the local or shared frontier, resume, summary) share
// its state; the pure parts already live in frontier, scope, robots, links and url_norm.

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "crawl/crawler.hpp"
#include "crawl/frontier.hpp"
#include "crawl/gunzip.hpp"
#include "crawl/links.hpp"
#include "crawl/record.hpp"
#include "crawl/robots.hpp"
#include "crawl/shared_frontier.hpp"
#include "fetch/input.hpp"
#include "fetch/json_line.hpp"
#include "fetch/result.hpp"
#include "fetch/runner.hpp"
#include "fetch/transfer.hpp"
#include "proto/text.hpp"

namespace exitpool::crawl {

namespace {

using pool::clock;
using pool::time_point;

// What a shard tells the coordinator about one finished URL.
struct report {
  std::string key;  // the frontier's host key
  std::uint64_t lease = 0;
  fetch::line_ref line;
  bool written = false;  // a result line was made (it is durable once line is)
  bool robots = false;
  bool sitemap = false;  // links: the sitemap's URLs; sitemaps: those of a sitemap index
  std::vector<std::string> sitemaps;
  std::string problem;  // a sitemap read only in part (gzip cut, corrupt or over 50 MB; body cut), for stderr
  long status = 0;
  std::string robots_body;  // robots: the file (at most robots_max_bytes)
  std::uint32_t depth = 0;
  std::uint8_t hops = 0;
  std::vector<std::string> links;
  std::string redirect;
};

// A sitemap read only in part: said on stderr (sitemaps get no output line).
void note_sitemap(const report& rep) {
  if (!rep.problem.empty()) {
    std::fprintf(stderr, "crawl: %s\n", rep.problem.c_str());
  }
}

std::string frontier_key(std::string_view url) {
  const url_key k = split_url(url);
  return std::string(k.scheme) + "://" + std::string(k.authority);
}

std::string_view header_value(const fetch::fetch_result& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

class crawl_hook final : public fetch::result_hook {
 public:
  crawl_hook(const crawl_config& cfg, const url_scope& scope) : cfg_(cfg), scope_(scope) {
    links_.follow_nofollow = cfg.follow_nofollow;
    links_.assets = cfg.follow_assets;
    links_.max_links = cfg.max_links;
    links_.max_html = cfg.max_html;
    links_.norm = cfg.norm;
  }

  void robots_options(fetch::transfer_options& o) const override {
    o.max_redirects = 5;  // RFC 9309 2.3.1.2: at least five
    o.keep = std::max(o.keep, robots_max_bytes);
  }

  // A shard's thread.
  bool on_result(std::string_view, const fetch::crawl_tag& tag, const fetch::response_capture& cap,
                 fetch::fetch_result& r, fetch::line_ref line) override {
    report rep;
    rep.key = frontier_key(r.url);
    rep.lease = tag.lease;
    rep.line = line;
    rep.status = r.status;  // of the last response; 0 when none came
    if (tag.sitemap) {
      rep.sitemap = true;
      if (r.error.empty() && r.status >= 200 && r.status < 300) {
        // A gzip sitemap is known by its bytes (1f 8b), not its name or Content-Type; it is
        // inflated to at most 50 MB (sitemaps.org's limit), so a gzip bomb is cut there.
        std::string_view xml = cap.body;
        gunzip_result z;
        if (is_gzip(cap.body)) {
          z = gunzip(cap.body, sitemap_max_bytes);
          xml = z.data;
          if (z.status != gunzip_status::ok) {
            rep.problem = fmt::format("gzip {}: {}", gunzip_status_name(z.status), z.error);
          }
        }
        if (r.body_truncated) {
          rep.problem += fmt::format("{}body cut at {} bytes", rep.problem.empty() ? "" : "; ", cap.body.size());
        }
        if (!rep.problem.empty()) {
          rep.problem =
              fmt::format("sitemap {}: {}: its URLs before the cut are read", proto::printable(r.url), rep.problem);
        }
        bool index = false;
        for (auto& u : sitemap_locs(xml, index)) {
          if (index) {
            rep.sitemaps.push_back(std::move(u));
          } else if (auto n = normalize_url(u, cfg_.norm); n && scope_.allows(*n)) {
            rep.links.push_back(std::move(*n));
          }
        }
      }
      post(std::move(rep));
      return false;  // a sitemap is not a page of the crawl: no line
    }
    if (tag.robots) {
      rep.robots = true;
      rep.robots_body = cap.body.substr(0, robots_max_bytes);
      post(std::move(rep));
      return false;  // robots.txt is not a page of the crawl: no line
    }
    page_record rec;
    rec.depth = tag.depth;
    rec.lease = tag.lease;
    if (r.error.empty() && r.status >= 300 && r.status < 400) {
      const std::string_view location = header_value(r, "location");
      if (!location.empty()) {
        if (auto u = resolve_url(r.url, location, cfg_.norm)) {
          rec.redirect = *u;
          if (scope_.allows(*u)) {
            rep.redirect = std::move(*u);
          }
        }
      }
    } else if (r.error.empty() && r.status >= 200 && r.status < 300 && is_html(header_value(r, "content-type"))) {
      page_links found = extract_links(cap.body, r.url, links_);
      rec.links_truncated = found.truncated || r.body_truncated;
      for (auto& l : found.links) {
        if (scope_.allows(l)) {
          rec.links.push_back(std::move(l));
        }
      }
    }
    append_page_record(r.extra, rec);
    rep.depth = tag.depth;
    rep.hops = tag.hops;
    rep.links = std::move(rec.links);
    rep.written = true;
    post(std::move(rep));
    return true;
  }

  // The coordinator's thread.
  void take(std::vector<report>& out) {
    std::lock_guard lock(mu_);
    out.swap(outbox_);
  }

 private:
  // One lock per finished URL (not per request byte): the coordinator swaps the whole box
  // out every few milliseconds, so the critical section is a push_back.
  void post(report rep) {
    std::lock_guard lock(mu_);
    outbox_.push_back(std::move(rep));
  }

  const crawl_config& cfg_;
  const url_scope& scope_;
  link_options links_;
  std::mutex mu_;
  std::vector<report> outbox_;
};

// Re-admits the links of the lines already in the output (resume). The output has been
// cut to whole lines by then.
void readmit_from_output(const std::string& path, frontier& f, const crawl_config& cfg) {
  fetch::line_reader reader(path);
  while (auto line = reader.next()) {
    auto rec = read_page_record(*line);
    if (!rec) {
      continue;
    }
    if (cfg.max_depth < 0 || static_cast<std::int64_t>(rec->depth) + 1 <= cfg.max_depth) {
      for (auto& l : rec->links) {
        f.add(std::move(l), rec->depth + 1, 0);
      }
    }
    // The hop count of a resumed redirect is not kept: it starts again (bounded by dedup).
    if (!rec->redirect.empty()) {
      f.add(std::move(rec->redirect), rec->depth, 1);
    }
  }
}

}  // namespace

std::vector<std::string> load_seeds(const std::vector<std::string>& args, const normalize_options& norm) {
  std::vector<std::string> out;
  auto take = [&](std::string_view text, const std::string& where) {
    if (auto u = normalize_url(text, norm)) {
      out.push_back(std::move(*u));
    } else {
      std::fprintf(stderr, "crawl: %s: not an http:// or https:// URL with a host: skipped\n", where.c_str());
    }
  };
  for (const auto& a : args) {
    if (a.find("://") != std::string::npos) {
      take(a, "seed " + a);
      continue;
    }
    std::ifstream in(a);
    if (!in) {
      throw std::runtime_error(fmt::format("seeds file {}: cannot read it: {}", a, std::strerror(errno)));
    }
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      const std::string_view t = fetch::trim(line);
      if (t.empty() || t.front() == '#') {
        continue;
      }
      take(t, fmt::format("{}:{}", a, n));
    }
    if (in.bad()) {
      throw std::runtime_error(fmt::format("seeds file {}: read error: {}", a, std::strerror(errno)));
    }
  }
  return out;
}

namespace {

// Hands the frontier's work to the shard that owns each URL's host, keeping what a full
// ring refused for the next round (in order).
class shard_feed {
 public:
  explicit shard_feed(std::vector<std::unique_ptr<fetch::shard>>& shards) : shards_(shards), pending_(shards.size()) {}

  void push(work_item& w) {
    fetch::input_item item;
    item.fp = fetch::fingerprint(w.url);
    item.url = std::move(w.url);
    item.host = std::move(w.host);
    item.valid = true;
    item.tag.depth = w.depth;
    item.tag.hops = w.hops;
    item.tag.robots = w.robots;
    item.tag.sitemap = w.sitemap;
    item.tag.lease = w.lease;
    item.tag.min_delay = fetch::from_seconds(w.crawl_delay_s);
    pending_[fetch::fingerprint(item.host) % shards_.size()].push_back(std::move(item));
  }

  // Offers what waits; true when nothing is left waiting.
  bool offer() {
    bool all = true;
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      while (!pending_[i].empty() && shards_[i]->offer(pending_[i].front())) {
        pending_[i].pop_front();
      }
      all = all && pending_[i].empty();
    }
    return all;
  }

 private:
  std::vector<std::unique_ptr<fetch::shard>>& shards_;
  std::vector<std::deque<fetch::input_item>> pending_;
};

frontier_config frontier_config_of(const crawl_config& cfg, const fetch::fetch_config& fc) {
  frontier_config frc;
  frc.window = std::max(16, fc.per_host * 4);
  frc.max_pages = cfg.frontier_url.empty() ? cfg.max_pages : 0;
  frc.agent = std::string(product_token(fc.user_agent));
  frc.ignore_robots = cfg.ignore_robots;
  frc.sitemaps = cfg.sitemaps;
  frc.robots_retry = fetch::from_seconds(cfg.robots_retry_s);
  frc.robots_tries = cfg.robots_tries;
  frc.max_crawl_delay_s = cfg.max_crawl_delay_s;
  // A worker of a shared frontier holds only what it leased (2 x --concurrency): no spill.
  if (cfg.frontier_url.empty() && fc.output != "-") {
    frc.queue_memory = cfg.queue_memory;
    frc.spill_path = fc.output + ".spill";
  }
  return frc;
}

bool follow_links(const crawl_config& cfg, std::uint32_t depth) {
  return cfg.max_depth < 0 || static_cast<std::int64_t>(depth) + 1 <= cfg.max_depth;
}

// The coordinator of a worker on a shared frontier (--frontier redis://): leases work from
// Redis into its own frontier (robots.txt, window), releases a host's politeness slot when a
// fetch ends, acknowledges a page (and admits its links) once its line is durable, renews
// what it holds, reaps what others let expire, and ends when Redis has nothing queued or
// leased. Redis unreachable: it pauses (nothing new is taken) and tries again every second;
// what it owes Redis waits.
class shared_coordinator {
 public:
  static constexpr int round_ms = 2;  // between Redis rounds while work flows (and between ticks)

  shared_coordinator(const crawl_config& cfg, const fetch::fetch_config& fc, frontier& front, crawl_hook& hook,
                     fetch::runner& run, const std::vector<std::string>& seeds)
      : cfg_(cfg),
        front_(front),
        hook_(hook),
        run_(run),
        feed_(run.shards()),
        capacity_(std::max(16, fc.concurrency * 2)),
        max_hops_(static_cast<std::uint32_t>(std::max(0, cfg.fetch.max_redirects))),
        sf_(config_of(cfg, fc)),
        where_(fleet::redacted(fleet::parse_redis_url(cfg.frontier_url))) {
    for (const auto& s : seeds) {
      seeds_.push_back(admit_of(s, 0, 0));
    }
  }

  // A restarted worker: the leases of the lines already in its output are acknowledged
  // (with their links) if Redis still has them, so those pages are not fetched again.
  void resume_from(const std::string& output) {
    fetch::line_reader reader(output);
    while (auto line = reader.next()) {
      auto rec = read_page_record(*line);
      if (!rec || rec->lease == 0) {
        continue;
      }
      acks_.push_back(ack_of(rec->lease, rec->depth, 0, rec->links, rec->redirect));
    }
  }

  void tick(time_point now) {
    hook_.take(reports_);
    for (auto& rep : reports_) {
      if (rep.robots) {
        front_.robots_fetched(rep.key, rep.status, rep.robots_body, now);
        publish_delay(rep.key);
        if (rep.status >= 200 && rep.status < 500 && rep.robots_body.size() <= robots_share_max_bytes) {
          // An answer that holds for a day: the fleet's too (shared_frontier.hpp, robots:KEY)
          robots_publish_.emplace_back(rep.key, fmt::format("{}\n{}", rep.status, rep.robots_body));
        }
        continue;
      }
      if (rep.sitemap) {
        note_sitemap(rep);
        front_.sitemap_fetched();
        for (const auto& l : rep.links) {
          extra_.push_back(admit_of(l, 0, 0));
        }
        for (const auto& m : rep.sitemaps) {
          front_.add_sitemap(m);
        }
        continue;
      }
      publish_delay(rep.key);  // --ignore-robots: the first page tells the fleet instead
      front_.page_done(rep.key);
      release_.push_back(ack_of(rep.lease, rep.depth, rep.hops, rep.links, rep.redirect));
      ++finished_;
      ack a{rep.lease, true, {}};
      if (rep.written) {
        waiting_.push_back({rep.line, std::move(a)});
      } else {
        acks_.push_back(std::move(a));
      }
    }
    reports_.clear();
    front_.take_dropped(dropped_);
    for (auto& w : dropped_) {
      acks_.push_back(ack{w.lease, false, {}});
      ++finished_;
    }
    dropped_.clear();

    const std::int64_t ms = shared_frontier::now_ms();
    if (ms >= next_round_) {
      round(ms, now);
    }
    front_.next(now, work_);
    for (auto& w : work_) {
      if (w.robots && !robots_held_.contains(w.key)) {
        // Another worker may have read it already: ask Redis in the next round first.
        robots_ask_.push_back(w.key);
        robots_held_.emplace(w.key, std::move(w));
        continue;
      }
      feed_.push(w);
    }
    work_.clear();
    const bool handed = feed_.offer();
    auto& g = run_.state();
    if (handed && seeded_ && !paused_ && remote_open_ == 0 && remote_leased_ == 0 && held_.empty() &&
        waiting_.empty() && acks_.empty() && release_.empty() && extra_.empty() && front_.finished() &&
        !g.input_done.exchange(true)) {
      for (auto& s : run_.shards()) {
        s->wake();
      }
    }
  }

  // After an fsync: the acks of lines now durable may go.
  void synced(const std::vector<std::uint64_t>& written) {
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->line.seq <= written[static_cast<std::size_t>(it->line.shard)]) {
        acks_.push_back(std::move(it->a));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // The crawl has nothing left for this worker but to make its last lines durable and
  // acknowledge them: nothing may still go out fleet-wide and every lease it holds has been
  // fetched. The fsync then comes at once, not at the next --fsync-interval, which every
  // worker (and so the crawl's end) would otherwise wait for.
  bool sync_now() const { return !waiting_.empty() && remote_open_ == 0 && held_.size() == finished_ && !paused_; }

  std::uint64_t robots_shared() const { return robots_shared_; }

  std::string progress() const {
    return fmt::format(
        "  shared: queued {}  leased {}  held {}{}{}", remote_queued_, remote_leased_, held_.size(),
        remote_max_pages_ > 0 ? fmt::format("  handed out {} of {}", remote_handed_, remote_max_pages_) : "",
        paused_ ? "  (Redis unreachable: paused)" : "");
  }

 private:
  static shared_config config_of(const crawl_config& cfg, const fetch::fetch_config& fc) {
    shared_config c;
    c.url = fleet::parse_redis_url(cfg.frontier_url);
    c.name = cfg.crawl_name;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    c.worker = fmt::format("{}:{}", host, ::getpid());
    c.lease = std::chrono::milliseconds(static_cast<long long>(cfg.lease_s * 1000));
    c.max_deliveries = std::max(1, cfg.max_deliveries);
    c.per_host = fc.per_host;
    c.delay = std::chrono::milliseconds(static_cast<long long>(fc.delay_s * 1000));
    c.max_pages = cfg.max_pages;
    return c;
  }

  // A link this worker has already sent is in Redis's dedup set (or in a round still to be
  // sent): it is not sent again. On this site most links are repeats, and each costs Redis a
  // SADD and the round trip its bytes.
  ack ack_of(std::uint64_t lease, std::uint32_t depth, std::uint32_t hops, const std::vector<std::string>& links,
             const std::string& redirect) {
    ack a;
    a.id = lease;
    if (follow_links(cfg_, depth)) {
      for (const auto& l : links) {
        if (const auto fp = fetch::fingerprint(l); sent_.insert(fp)) {
          a.links.push_back(admit_of(l, depth + 1, 0, fp));
        }
      }
    }
    if (const auto fp = fetch::fingerprint(redirect); !redirect.empty() && hops < max_hops_ && sent_.insert(fp)) {
      a.links.push_back(admit_of(redirect, depth, hops + 1u, fp));
    }
    return a;
  }

  // The host's delay for every worker: its Crawl-delay, else --delay. Once per host.
  void publish_delay(const std::string& key) {
    if (published_.insert(key).second) {
      const double d = std::max(front_.crawl_delay(key), cfg_.fetch.delay_s);
      delays_.emplace_back(key, static_cast<long long>(d * 1000));
    }
  }

  // The fleet's answers to the robots.txt this worker asked for: a host someone has read is
  // known here at once; the others are fetched (also when Redis did not answer).
  void robots_answered(const std::vector<std::string>& asked, const std::vector<std::optional<std::string>>& got,
                       time_point now) {
    for (std::size_t i = 0; i < asked.size(); ++i) {
      auto it = robots_held_.find(asked[i]);
      if (it == robots_held_.end()) {
        continue;
      }
      long status = 0;
      const std::string* v = i < got.size() && got[i] ? &*got[i] : nullptr;
      const auto nl = v ? v->find('\n') : std::string::npos;
      if (v && nl != std::string::npos && std::from_chars(v->data(), v->data() + nl, status).ec == std::errc() &&
          status >= 200 && status < 500) {
        front_.robots_fetched(asked[i], status, std::string_view(*v).substr(nl + 1), now);
        publish_delay(asked[i]);
        ++robots_shared_;
      } else {
        feed_.push(it->second);
      }
      robots_held_.erase(it);
    }
  }

  void round(std::int64_t ms, time_point now) {
    shared_round r;
    if (!seeded_) {
      r.seeds = seeds_;
    }
    r.seeds.insert(r.seeds.end(), extra_.begin(), extra_.end());
    // What this worker owes Redis moves into the round and back if the round fails.
    r.release.swap(release_);
    r.acks.swap(acks_);
    r.delays = delays_;
    r.robots_get.swap(robots_ask_);
    r.robots_set.swap(robots_publish_);
    const auto lease_ms = static_cast<std::int64_t>(cfg_.lease_s * 1000);
    if (ms >= next_renew_) {
      r.renew.assign(held_.begin(), held_.end());
      next_renew_ = ms + std::max<std::int64_t>(100, lease_ms / 3);
    }
    if (ms >= next_reap_) {
      r.reap = r.heartbeat = true;
      next_reap_ = ms + 1000;
    }
    // Room counts leases not yet fetched: a fetched page's lease is held until its line is
    // fsynced, which must not throttle the crawl to capacity per --fsync-interval.
    const auto room = static_cast<long long>(capacity_) - static_cast<long long>(held_.size() - finished_);
    r.take = room > 0 && !run_.state().stopping.load() ? static_cast<int>(room) : 0;
    const bool sends = !r.seeds.empty() || !r.release.empty() || !r.acks.empty() || !r.delays.empty() ||
                       !r.renew.empty() || r.reap || !r.robots_get.empty() || !r.robots_set.empty();
    if (!sends && r.take == 0 && seeded_ && !paused_) {
      next_round_ = ms + round_ms;  // full and nothing owed: no round trip (Redis's CPU is the fleet's)
      return;
    }
    if (const auto err = sf_.run(r, ms)) {
      release_.swap(r.release);
      acks_.swap(r.acks);
      robots_publish_.swap(r.robots_set);
      robots_answered(r.robots_get, {}, now);  // no answer: fetch them
      if (!paused_) {
        std::fprintf(stderr, "crawl: Redis %s: %s (%s): pausing, trying again every second\n", where_.c_str(),
                     err.message.c_str(), fleet::redis_errc_name(err.code));
      }
      paused_ = true;
      next_round_ = ms + 1000;
      next_renew_ = 0;  // renew first thing when it answers again
      return;
    }
    if (paused_) {
      std::fprintf(stderr, "crawl: Redis answers again: resuming\n");
    }
    paused_ = false;
    seeded_ = true;
    extra_.clear();
    delays_.clear();
    robots_answered(r.robots_get, r.robots_got, now);
    for (const auto& a : r.acks) {
      if (held_.erase(a.id) > 0) {
        --finished_;
      }
    }
    for (auto& t : r.taken) {
      held_.insert(t.id);
      work_item w;
      w.url = std::move(t.item.url);
      w.depth = t.item.depth;
      w.hops = static_cast<std::uint8_t>(std::min<std::uint32_t>(t.item.hops, 255));
      w.lease = t.id;
      front_.add_leased(std::move(w));
    }
    remote_queued_ = r.queued;
    remote_leased_ = r.leased;
    remote_handed_ = r.handed;
    remote_open_ = r.open;
    if (r.max_pages >= 0 && r.max_pages != remote_max_pages_) {
      remote_max_pages_ = r.max_pages;
      if (static_cast<long long>(cfg_.max_pages) != r.max_pages) {
        std::fprintf(stderr,
                     "crawl: --max-pages %llu differs from this crawl's %lld (the first worker's): using %lld\n",
                     static_cast<unsigned long long>(cfg_.max_pages), r.max_pages, r.max_pages);
      }
    }
    // A host's slots come back one round after its fetches end: keep rounds short (2 ms)
    // while work flows; when a round neither sends nor gets anything, wait longer (up to
    // 16 ms), so idle workers do not poll Redis 500 times a second each.
    idle_rounds_ = sends || !r.taken.empty() ? 0 : std::min(idle_rounds_ + 1, 3);
    next_round_ = ms + (round_ms << idle_rounds_);
  }

  struct pending_ack {
    fetch::line_ref line;
    ack a;
  };

  const crawl_config& cfg_;
  frontier& front_;
  crawl_hook& hook_;
  fetch::runner& run_;
  shard_feed feed_;
  std::size_t capacity_;
  std::uint32_t max_hops_;
  shared_frontier sf_;
  std::string where_;  // the Redis URL without credentials
  std::vector<admit> seeds_;
  std::vector<admit> extra_;  // URLs from sitemaps, to admit
  bool seeded_ = false;
  bool paused_ = false;
  std::vector<report> reports_;
  std::vector<work_item> work_, dropped_;
  std::vector<ack> release_;  // fetches ended: slots to free, links to admit
  std::vector<std::pair<std::string, long long>> delays_;
  std::deque<pending_ack> waiting_;            // lines not durable yet
  std::vector<ack> acks_;                      // ready to go
  std::unordered_set<std::uint64_t> held_;     // leases this worker holds
  std::size_t finished_ = 0;                   // of those, fetched (or dropped): waiting to be acknowledged
  std::unordered_set<std::string> published_;  // hosts whose delay this worker told Redis
  std::vector<std::string> robots_ask_;        // hosts whose robots.txt to ask the fleet for
  std::unordered_map<std::string, work_item> robots_held_;           // their fetches, held until it answers
  std::vector<std::pair<std::string, std::string>> robots_publish_;  // answers to tell the fleet
  std::uint64_t robots_shared_ = 0;                                  // robots.txt the fleet answered
  fetch::url_set sent_{1 << 16};                                     // links this worker has admitted (fingerprints)
  std::int64_t next_round_ = 0, next_renew_ = 0, next_reap_ = 0;
  long long remote_queued_ = -1, remote_leased_ = -1, remote_handed_ = -1;
  long long remote_open_ = -1;       // queued work that may still go out (--max-pages: re-deliveries only once spent)
  long long remote_max_pages_ = -1;  // the crawl's --max-pages as Redis has it
  int idle_rounds_ = 0;  // rounds in a row that sent and took nothing (0-3: the next round in 2, 4, 8, 16 ms)
};

}  // namespace

int run_crawl(const crawl_config& cfg) {
  const std::vector<std::string> seeds = load_seeds(cfg.seeds, cfg.norm);
  if (seeds.empty()) {
    throw std::runtime_error("no crawlable seed URL (--seeds: http:// or https:// URLs, or files of them)");
  }
  const url_scope scope(cfg.scope, seeds, cfg.include, cfg.exclude);
  const bool shared = !cfg.frontier_url.empty();

  fetch::fetch_config fc = cfg.fetch;
  fc.max_redirects = 0;  // redirects are links: scope, robots.txt and dedup apply to them
  fc.min_keep = cfg.max_html;
  frontier front(frontier_config_of(cfg, fc));

  crawl_hook hook(cfg, scope);
  fetch::runner run(fc, "crawl", front.seen(), &hook);
  fetch::runner::watch w;
  w.period = std::chrono::milliseconds(2);

  std::unique_ptr<shared_coordinator> co;
  auto& shards = run.shards();
  auto& g = run.state();
  shard_feed feed(shards);
  std::vector<report> reports;
  std::vector<work_item> work;
  const auto max_hops = static_cast<std::uint8_t>(std::clamp(cfg.fetch.max_redirects, 0, 255));
  if (shared) {
    // The shared frontier has what this worker's output holds (acks follow durability).
    // Lines written but not acknowledged before a kill are acknowledged now if their
    // leases are still held; otherwise someone fetches them again, and `crawl merge` keeps
    // each URL's first line.
    co = std::make_unique<shared_coordinator>(cfg, fc, front, hook, run, seeds);
    if (run.scanned().lines > 0) {
      co->resume_from(fc.output);
    }
    // One tick per Redis round (2 ms while work flows): a freed per-host slot goes back to the
    // fleet one round after its fetch ends and out again at someone's next round, so the round
    // sets how fast a host's slots cycle. On the bench site (3 workers, 1 ms fetches), 2 ms
    // against 5: wall 4.2-4.6 -> 3.2-3.4 s for ~5% more CPU; 1 ms gains nothing more.
    w.period = std::chrono::milliseconds(shared_coordinator::round_ms);
    w.tick = [&](time_point now) { co->tick(now); };
    w.on_synced = [&](const std::vector<std::uint64_t>& written) { co->synced(written); };
    w.sync_now = [&] { return co->sync_now(); };
    w.progress_suffix = [&] { return co->progress(); };
  } else {
    front.count_done(run.scanned().lines);
    if (run.scanned().lines > 0) {
      readmit_from_output(fc.output, front, cfg);
    }
    for (const auto& s : seeds) {
      front.add(s, 0, 0);
    }
    w.tick = [&](time_point now) {
      hook.take(reports);
      for (auto& rep : reports) {
        if (rep.robots) {
          front.robots_fetched(rep.key, rep.status, rep.robots_body, now);
          continue;
        }
        if (rep.sitemap) {
          note_sitemap(rep);
          front.sitemap_fetched();
          for (auto& l : rep.links) {
            front.add(std::move(l), 0, 0);
          }
          for (const auto& m : rep.sitemaps) {
            front.add_sitemap(m);
          }
          continue;
        }
        front.page_done(rep.key);
        if (follow_links(cfg, rep.depth)) {
          for (auto& l : rep.links) {
            front.add(std::move(l), rep.depth + 1, 0);
          }
        }
        if (!rep.redirect.empty() && rep.hops < max_hops) {
          front.add(std::move(rep.redirect), rep.depth, static_cast<std::uint8_t>(rep.hops + 1));
        }
      }
      reports.clear();
      front.next(now, work);
      for (auto& item : work) {
        feed.push(item);
      }
      work.clear();
      if (feed.offer() && front.finished() && !g.input_done.exchange(true)) {
        for (auto& s : shards) {
          s->wake();
        }
      }
    };
    w.progress_suffix = [&] {
      const auto c = front.counts();
      return c.spilled > 0 ? fmt::format("  queued {} ({} on disk)  discovered {}", c.queued, c.spilled, c.discovered)
                           : fmt::format("  queued {}  discovered {}", c.queued, c.discovered);
    };
  }
  // An error while the crawl runs (the spill file cannot be written or read back) is
  // fatal, as a fetch's unwritable output is: the shards stop, the summary is printed, exit 1.
  w.tick = [tick = std::move(w.tick), &g, &shards](time_point now) {
    if (g.fatal.load()) {
      return;
    }
    try {
      tick(now);
    } catch (const std::exception& e) {
      g.set_fatal(e.what());
      for (auto& s : shards) {
        s->wake();
      }
    }
  };
  run.start();
  const int rc = run.wait(w);
  const auto c = front.counts();
  const std::string spill_path = frontier_config_of(cfg, fc).spill_path;
  if (!spill_path.empty()) {
    ::unlink(spill_path.c_str());  // a cache of this run's queue: a resume rebuilds it from the output
  }
  if (shared) {
    std::fprintf(stderr,
                 "crawl: %llu disallowed by robots.txt, %llu dropped (robots.txt unreachable), %llu robots.txt read "
                 "from the fleet\n",
                 static_cast<unsigned long long>(c.disallowed), static_cast<unsigned long long>(c.robots_unreachable),
                 static_cast<unsigned long long>(co->robots_shared()));
    return rc;
  }
  std::fprintf(stderr,
               "crawl: %llu URLs discovered, %llu pages fetched (with earlier runs), %llu disallowed by robots.txt, "
               "%llu dropped (robots.txt unreachable), %llu still queued; dedup set %.1f MiB; %llu URLs spilled "
               "to disk (--queue-memory)\n",
               static_cast<unsigned long long>(c.discovered), static_cast<unsigned long long>(c.handed),
               static_cast<unsigned long long>(c.disallowed), static_cast<unsigned long long>(c.robots_unreachable),
               static_cast<unsigned long long>(c.queued), static_cast<double>(front.memory_bytes()) / (1 << 20),
               static_cast<unsigned long long>(c.spilled_total));
  return rc;
}

int crawl_status(const std::string& frontier_url, const std::string& name) {
  shared_config c;
  c.url = fleet::parse_redis_url(frontier_url);
  c.name = name;
  shared_frontier sf(c);
  shared_counts n;
  if (const auto err = sf.counts(n, shared_frontier::now_ms())) {
    std::fprintf(stderr, "crawl status: %s: %s (%s)\n", fleet::redacted(c.url).c_str(), err.message.c_str(),
                 fleet::redis_errc_name(err.code));
    return 1;
  }
  std::string workers;
  for (const auto& wk : n.workers) {
    workers += " " + wk;
  }
  std::printf(
      "crawl %s on %s\nqueued %lld  leased %lld  done %lld  dropped (robots.txt) %lld  dead-lettered %lld  "
      "stale acks %lld\nhosts ready %lld\nworkers alive %zu:%s\n",
      name.c_str(), fleet::redacted(c.url).c_str(), n.queued, n.leased, n.done, n.dropped, n.dead, n.stale,
      n.hosts_ready, n.workers.size(), workers.c_str());
  if (n.max_pages > 0) {
    std::printf("pages handed out %lld of --max-pages %lld%s\n", n.handed, n.max_pages,
                n.handed >= n.max_pages ? " (spent: what is still queued stays there)" : "");
  }
  for (const auto& [host, len] : n.backlog) {
    std::printf("backlog %s %lld\n", host.c_str(), len);
  }
  return 0;
}

int crawl_merge(const std::vector<std::string>& files) {
  fetch::url_set seen;
  std::uint64_t kept = 0, dropped = 0;
  std::string out;
  for (const auto& f : files) {
    try {
      fetch::line_reader reader(f);
      while (auto line = reader.next()) {
        auto url = fetch::complete_object(*line) ? fetch::read_url_field(*line) : std::nullopt;
        if (!url) {
          continue;  // a torn line
        }
        if (!seen.insert(fetch::fingerprint(*url))) {
          ++dropped;
          continue;
        }
        ++kept;
        out.append(*line);
        out += '\n';
        if (out.size() > (1 << 20)) {
          std::fwrite(out.data(), 1, out.size(), stdout);
          out.clear();
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "crawl merge: %s\n", e.what());
      return 1;
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  std::fprintf(stderr, "crawl merge: %llu pages, %llu later lines of the same URL dropped\n",
               static_cast<unsigned long long>(kept), static_cast<unsigned long long>(dropped));
  return 0;
}

}  // namespace exitpool::crawl
