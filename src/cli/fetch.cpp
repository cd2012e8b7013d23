#include "cli/fetch.hpp"

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/dns_options.hpp"
#include "fetch/fetcher.hpp"
#include "ops/duration.hpp"
#include "pool/selector.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::cli {

int prepare_fetch_options(fetch_options& o, const char* command) {
  auto p = pool::parse_policy(o.policy);
  if (!p) {
    std::fprintf(stderr, "exitpool %s: --policy %s: expected round-robin, random, least-inflight or fastest\n", command,
                 o.policy.c_str());
    return 2;
  }
  o.cfg.policy = *p;
  o.cfg.ban_statuses = o.ban_statuses;
  o.cfg.resume = !o.no_resume;
  o.cfg.http2 = !o.no_http2;
  for (auto* s : {&o.cfg.filter.country, &o.cfg.filter.city, &o.cfg.filter.type}) {
    for (auto& c : *s) {
      c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
  }
  o.cfg.dns = o.dns.to_config();
  return 0;
}

namespace {

int run_fetch_command(fetch_options& o) {
  try {
    if (const int rc = prepare_fetch_options(o, "fetch"); rc != 0) {
      return rc;
    }
    return fetch::run_fetch(o.cfg);
  } catch (const proto::pool_error& e) {
    std::fprintf(stderr, "exitpool fetch: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exitpool fetch: %s\n", e.what());
    return 2;
  }
}

}  // namespace

void add_fetch_options(CLI::App* cmd, fetch_options& o) {
  auto& c = o.cfg;
  cmd->add_option("--config", "TOML config file; keys are the long option names");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--pool", c.pool_file, "Pool file, one exit per line (default: direct://, this machine)");
  cmd->add_option("--output", c.output, "Results, one JSON object per line (also the resume checkpoint)")->required();
  cmd->add_option("--state", c.state_dir, "State dir (lock); default OUTPUT.state");
  cmd->add_flag("--no-resume", o.no_resume, "Start over: truncate the output instead of continuing it");
  cmd->add_option("--threads", c.threads, "Shards (threads, one libcurl multi handle each); 0 = one per CPU")
      ->capture_default_str();
  cmd->add_option("--concurrency", c.concurrency, "Requests in flight, all shards together")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--per-host", c.per_host, "Requests in flight per target host")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--delay", c.delay_s, "Seconds between request starts to one host")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--auto-throttle", c.auto_throttle,
                "Adapt each host's requests in flight (1 up to --per-host) to its latency and errors (AIMD)");
  cmd->add_option("--retries", c.retries, "Further attempts after the first (each on another exit while one remains)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--backoff", c.backoff_s, "Seconds before the first retry; doubles per retry, with jitter")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--timeout", c.timeout_s, "Seconds per attempt (whole transfer)")->capture_default_str();
  cmd->add_option("--connect-timeout", c.connect_timeout_s, "Seconds to connect (through the exit)")
      ->capture_default_str();
  cmd->add_option("--queue-timeout", c.queue_timeout_s,
                  "Seconds a URL waits for an exit with capacity (bans, rate limits) before its error result")
      ->capture_default_str();
  cmd->add_option("--country", c.filter.country, "Only exits with this country= tag");
  cmd->add_option("--city", c.filter.city, "Only exits with this city= tag");
  cmd->add_option("--type", c.filter.type, "Only exits with this type= tag");
  cmd->add_flag("--session-per-host", c.session_per_host, "Sticky by host: every request to a host uses one exit");
  cmd->add_option("--policy", o.policy, "Rotation policy: round-robin, random, least-inflight, fastest")
      ->capture_default_str();
  cmd->add_option("--per-exit-rate", c.limits.per_exit_rate, "Requests per second per exit (0 = off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--per-exit-host-rate", c.limits.per_exit_host_rate,
                  "Requests per second per exit and target host (0 = off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--per-exit-concurrency", c.limits.per_exit_concurrency, "Requests in flight per exit (0 = off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ban-status", o.ban_statuses, "HTTP statuses that ban (exit, host) and are retried elsewhere")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->delimiter(',');
  cmd->add_option("--ban-pattern", c.ban_patterns,
                  "Regex (RE2 syntax) searched in the status, kept headers and first 16 KiB of body: a ban")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--ban-time", c.ban_duration_s, "Seconds a ban lasts when the response has no Retry-After")
      ->capture_default_str();
  auto* bodies =
      cmd->add_option("--bodies", c.bodies_dir, "Write each body to a file in DIR (body_file in the output)");
  cmd->add_option("--inline-body-max", c.inline_body_max, "Bytes of body kept inline (0: none)")
      ->capture_default_str()
      ->excludes(bodies);
  cmd->add_option("--warc", c.warc_path,
                  "Also write every response (and its request) to this WARC 1.1 file (one gzip member per record)");
  cmd->add_option("--max-body", c.max_body, "Bytes kept per body with --bodies or --warc")->capture_default_str();
  cmd->add_option("--user-agent", c.user_agent, "User-Agent header")->capture_default_str();
  cmd->add_option("--max-redirects", c.max_redirects, "Redirects followed (0: none)")->capture_default_str();
  cmd->add_flag("--insecure", c.insecure, "Do not verify targets' TLS certificates");
  cmd->add_option("--ca-file", c.ca_file, "CA bundle (PEM) for targets and https:// exits, instead of the system's");
  cmd->add_flag("--no-http2", o.no_http2, "HTTP/1.1 only (default: HTTP/2 over TLS when the target offers it)");
  cmd->add_option("--progress-interval", c.progress_interval_s,
                  "Seconds between progress lines (default 0.25 on a terminal, 5 otherwise)");
  cmd->add_option("--fsync-interval", c.fsync_interval_s, "Seconds between fsyncs of the output")
      ->capture_default_str();
  cmd->add_flag("--quiet", c.quiet, "No progress lines (the summary is still printed)");
  add_dns_options(cmd, o.dns);
  ops::accept_durations(cmd, {"--delay", "--backoff", "--timeout", "--connect-timeout", "--queue-timeout", "--ban-time",
                              "--progress-interval", "--fsync-interval"});
}

void add_fetch(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<fetch_options>();
  auto* cmd = app.add_subcommand("fetch", "Fetch a list of URLs through the pool, one JSON line per URL (resumable)");
  add_fetch_options(cmd, *o);
  cmd->add_option("--input", o->cfg.input, "URLs, one per line; '-' is stdin; gzip is detected")->capture_default_str();
  cmd->callback([o, &run] { run = [o] { return run_fetch_command(*o); }; });
}

}  // namespace exitpool::cli
