#include "cli/crawl.hpp"

#include <cstdio>
#include <memory>
#include <string>

#include "cli/fetch.hpp"
#include "crawl/crawler.hpp"
#include "ops/duration.hpp"

namespace exitpool::cli {

namespace {

struct crawl_options {
  fetch_options fetch;
  crawl::crawl_config cfg;
  std::string scope = "host";
  std::vector<std::string> merge_files;
};

int run_crawl_command(crawl_options& o) {
  try {
    if (const int rc = prepare_fetch_options(o.fetch, "crawl"); rc != 0) {
      return rc;
    }
    if (!crawl::parse_scope_kind(o.scope, o.cfg.scope)) {
      std::fprintf(stderr, "exitpool crawl: --scope %s: expected host, domain, prefix or any\n", o.scope.c_str());
      return 2;
    }
    if (o.cfg.seeds.empty() || o.fetch.cfg.output.empty()) {
      std::fprintf(stderr, "exitpool crawl: --seeds and --output are required\n");
      return 2;
    }
    o.cfg.fetch = o.fetch.cfg;
    return crawl::run_crawl(o.cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exitpool crawl: %s\n", e.what());
    return 2;
  }
}

}  // namespace

void add_crawl(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<crawl_options>();
  auto& c = o->cfg;
  o->fetch.cfg.user_agent = "exitpool-crawl/0.1";
  auto* cmd = app.add_subcommand(
      "crawl", "Crawl from seed URLs through the pool: follow links in scope, obey robots.txt (resumable)");
  add_fetch_options(cmd, o->fetch);
  // Required unless a subcommand (status, merge) is given: checked when the crawl runs.
  cmd->get_option("--output")->required(false);
  cmd->add_option("--seeds", c.seeds, "Seed URLs, or files of them (one per line, '#' comments; required)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--scope", o->scope,
                  "Links followed: host (a seed's host), domain (a seed's host and below; www. dropped), prefix "
                  "(under a seed's directory), any")
      ->capture_default_str()
      ->check(CLI::IsMember({"host", "domain", "prefix", "any"}));
  cmd->add_option("--include", c.include, "Only URLs this regex (RE2) finds a match in (repeatable: any of them)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--exclude", c.exclude, "Never URLs this regex (RE2) finds a match in (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--max-depth", c.max_depth, "Links followed from a seed (0: the seeds only; -1: no limit)")
      ->capture_default_str();
  cmd->add_option(
         "--max-pages", c.max_pages,
         "Pages fetched at most, earlier runs included; with --frontier, by all workers together (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--queue-memory", c.queue_memory,
                  "Queued URLs kept in memory; past that, hosts spill to OUTPUT.spill (0: never spill)")
      ->capture_default_str();
  cmd->add_flag("--ignore-robots", c.ignore_robots, "Do not fetch or obey robots.txt");
  cmd->add_flag("--follow-nofollow", c.follow_nofollow, "Follow rel=nofollow links and pages with a nofollow meta tag");
  cmd->add_flag("--follow-assets", c.follow_assets, "Also follow img and script sources");
  cmd->add_flag("--sitemaps", c.sitemaps,
                "Also crawl the URLs of the sitemaps robots.txt names (XML urlset or sitemap index, gzip or not)");
  cmd->add_option("--strip-param", c.norm.strip_params,
                  "Query parameter removed from every URL (repeatable; e.g. utm_source)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_flag("--strip-query", c.norm.strip_query, "Remove every URL's query");
  cmd->add_option("--max-links", c.max_links, "Links read per page")->capture_default_str();
  cmd->add_option("--max-html", c.max_html, "Bytes of a page parsed for links")->capture_default_str();
  cmd->add_option("--robots-retry", c.robots_retry_s,
                  "Seconds before an unreachable (5xx) robots.txt is fetched again (doubling; the host's pages wait)")
      ->capture_default_str();
  cmd->add_option("--robots-tries", c.robots_tries, "Fetches of an unreachable robots.txt before its host is given up")
      ->capture_default_str();
  cmd->add_option("--max-crawl-delay", c.max_crawl_delay_s, "Seconds: a longer robots.txt Crawl-delay is held to this")
      ->capture_default_str();
  auto* frontier =
      cmd->add_option("--frontier", c.frontier_url,
                      "Share the frontier with other workers in this Redis (redis://[:PASSWORD@]HOST:PORT/DB)");
  cmd->add_option("--crawl-name", c.crawl_name, "The shared crawl's name (its keys' prefix in Redis)")
      ->capture_default_str();
  cmd->add_option("--lease", c.lease_s, "Seconds a leased URL stays with its worker unless renewed (shared frontier)")
      ->capture_default_str();
  cmd->add_option("--max-deliveries", c.max_deliveries,
                  "Leases of a URL that may expire before it goes to the dead-letter list (shared frontier)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  ops::accept_durations(cmd, {"--robots-retry", "--max-crawl-delay", "--lease"});
  cmd->callback([o, &run] {
    if (!run) {
      run = [o] { return run_crawl_command(*o); };
    }
  });

  auto* status = cmd->add_subcommand("status",
                                     "Counts of a shared crawl: queued, leased, done, dead-lettered, "
                                     "per-host backlog, workers alive");
  status->add_option("--frontier", c.frontier_url, "The crawl's Redis (redis://[:PASSWORD@]HOST:PORT/DB)")->required();
  status->add_option("--crawl-name", c.crawl_name, "The shared crawl's name")->capture_default_str();
  status->callback([o, &run] {
    run = [o] {
      try {
        return crawl::crawl_status(o->cfg.frontier_url, o->cfg.crawl_name);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "exitpool crawl status: %s\n", e.what());
        return 2;
      }
    };
  });
  auto* merge = cmd->add_subcommand("merge", "Merge the workers' outputs to stdout, each URL's first line only");
  merge->add_option("files", o->merge_files, "Output files (JSONL) of the workers")->required();
  merge->callback([o, &run] { run = [o] { return crawl::crawl_merge(o->merge_files); }; });
  (void)frontier;
}

}  // namespace exitpool::cli
