// The crawl's run: the coordinator around fetch's runner, and the result hook the shards
// call (crawl/crawler.hpp has the picture).

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "crawl/crawler.hpp"
#include "crawl/frontier.hpp"
#include "crawl/links.hpp"
#include "crawl/record.hpp"
#include "crawl/robots.hpp"
#include "fetch/input.hpp"
#include "fetch/json_line.hpp"
#include "fetch/result.hpp"
#include "fetch/runner.hpp"
#include "fetch/transfer.hpp"

namespace exitpool::crawl {

namespace {

using pool::clock;
using pool::time_point;

// What a shard tells the coordinator about one finished URL.
struct report {
  std::string key;  // the frontier's host key
  bool robots = false;
  long status = 0;
  std::string robots_body;  // robots: the file (at most robots_max_bytes)
  std::uint32_t depth = 0;
  std::uint8_t hops = 0;
  std::vector<std::string> links;
  std::string redirect;
};

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
    rep.status = r.status;  // of the last response; 0 when none came
    if (tag.robots) {
      rep.robots = true;
      rep.robots_body = cap.body.substr(0, robots_max_bytes);
      post(std::move(rep));
      return false;  // robots.txt is not a page of the crawl: no line
    }
    page_record rec;
    rec.depth = tag.depth;
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

int run_crawl(const crawl_config& cfg) {
  const std::vector<std::string> seeds = load_seeds(cfg.seeds, cfg.norm);
  if (seeds.empty()) {
    throw std::runtime_error("no crawlable seed URL (--seeds: http:// or https:// URLs, or files of them)");
  }
  const url_scope scope(cfg.scope, seeds, cfg.include, cfg.exclude);

  fetch::fetch_config fc = cfg.fetch;
  fc.max_redirects = 0;  // redirects are links: scope, robots.txt and dedup apply to them
  fc.min_keep = cfg.max_html;

  frontier_config frc;
  frc.window = std::max(16, fc.per_host * 4);
  frc.max_pages = cfg.max_pages;
  frc.agent = std::string(product_token(fc.user_agent));
  frc.ignore_robots = cfg.ignore_robots;
  frc.robots_retry = fetch::from_seconds(cfg.robots_retry_s);
  frc.robots_tries = cfg.robots_tries;
  frc.max_crawl_delay_s = cfg.max_crawl_delay_s;
  frontier front(frc);

  crawl_hook hook(cfg, scope);
  fetch::url_set& seen = front.seen();
  fetch::runner run(fc, "crawl", seen, &hook);
  front.count_done(run.scanned().lines);
  if (run.scanned().lines > 0) {
    readmit_from_output(fc.output, front, cfg);
  }
  for (const auto& s : seeds) {
    front.add(s, 0, 0);
  }

  auto& shards = run.shards();
  auto& g = run.state();
  std::vector<std::deque<fetch::input_item>> pending(shards.size());
  std::vector<report> reports;
  std::vector<work_item> work;
  const auto max_hops = static_cast<std::uint8_t>(std::clamp(cfg.fetch.max_redirects, 0, 255));

  auto tick = [&](time_point now) {
    hook.take(reports);
    for (auto& rep : reports) {
      if (rep.robots) {
        front.robots_fetched(rep.key, rep.status, rep.robots_body, now);
        continue;
      }
      front.page_done(rep.key);
      if (cfg.max_depth < 0 || static_cast<std::int64_t>(rep.depth) + 1 <= cfg.max_depth) {
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
    for (auto& w : work) {
      fetch::input_item item;
      item.fp = fetch::fingerprint(w.url);
      item.url = std::move(w.url);
      item.host = std::move(w.host);
      item.valid = true;
      item.tag.depth = w.depth;
      item.tag.hops = w.hops;
      item.tag.robots = w.robots;
      item.tag.min_delay = fetch::from_seconds(w.crawl_delay_s);
      pending[fetch::fingerprint(item.host) % shards.size()].push_back(std::move(item));
    }
    work.clear();
    bool all_handed = true;
    for (std::size_t i = 0; i < shards.size(); ++i) {
      while (!pending[i].empty() && shards[i]->offer(pending[i].front())) {
        pending[i].pop_front();
      }
      all_handed = all_handed && pending[i].empty();
    }
    if (all_handed && front.finished() && !g.input_done.exchange(true)) {
      for (auto& s : shards) {
        s->wake();
      }
    }
  };

  fetch::runner::watch w;
  w.period = std::chrono::milliseconds(2);
  w.tick = tick;
  w.progress_suffix = [&] {
    const auto c = front.counts();
    return fmt::format("  queued {}  discovered {}", c.queued, c.discovered);
  };
  run.start();
  const int rc = run.wait(w);
  const auto c = front.counts();
  std::fprintf(stderr,
               "crawl: %llu URLs discovered, %llu pages fetched (with earlier runs), %llu disallowed by robots.txt, "
               "%llu dropped (robots.txt unreachable), %llu still queued; dedup set %.1f MiB\n",
               static_cast<unsigned long long>(c.discovered), static_cast<unsigned long long>(c.handed),
               static_cast<unsigned long long>(c.disallowed), static_cast<unsigned long long>(c.robots_unreachable),
               static_cast<unsigned long long>(c.queued), static_cast<double>(front.memory_bytes()) / (1 << 20));
  return rc;
}

}  // namespace exitpool::crawl
