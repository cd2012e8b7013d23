#include "cli/serve.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/dns_options.hpp"
#include "cli/log_format.hpp"
#include "cli/pool_options.hpp"
#include "fleet/redis.hpp"
#include "gateway/server.hpp"
#include "net/probe.hpp"
#include "ops/duration.hpp"
#include "ops/log_format.hpp"
#include "proto/pool_line.hpp"
#include "proto/text.hpp"

namespace exitpool::cli {

namespace {

constexpr std::string_view embedded_pool = "direct:// id=direct\n";

struct serve_options {
  gateway::config cfg;
  std::string policy = "round-robin";
  double handshake_s = 10;
  double dial_s = 10;
  double idle_s = 300;
  double drain_s = 30;
  std::string session_busy = "wait";
  double response_s = 30;
  double queue_s = 10;
  double ban_s = 300;
  double cooldown_s = 10;
  double max_cooldown_s = 300;
  double check_interval_s = 30;
  double check_timeout_s = 5;
  std::vector<int> ban_statuses{403, 407, 429, 503};
  std::string log_level = "info";
  std::string log_format = "text";
  bool check_config = false;
  dns_options dns;
  std::string state_password_file;
  double happy_eyeballs_s = 0.25;
  const CLI::App* cmd = nullptr;  // for the --pool sources (cli/pool_options.hpp), after the parse
};

std::chrono::milliseconds seconds(double s) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
}

int serve_with_logger(serve_options& o, bool json_log) {
  auto& cfg = o.cfg;
  auto policy = pool::parse_policy(o.policy);
  if (!policy) {
    throw std::runtime_error(
        fmt::format("--policy: unknown policy '{}' (round-robin, random, least-inflight, fastest)", o.policy));
  }
  cfg.policy = *policy;
  cfg.handshake_timeout = seconds(o.handshake_s);
  cfg.dial_timeout = seconds(o.dial_s);
  if (!(o.happy_eyeballs_s >= 0.01 && o.happy_eyeballs_s <= 10)) {
    throw std::runtime_error(fmt::format("--happy-eyeballs-delay: {} s is outside 10ms..10s", o.happy_eyeballs_s));
  }
  cfg.happy_eyeballs_delay = seconds(o.happy_eyeballs_s);
  cfg.idle_timeout = seconds(o.idle_s);
  cfg.drain_timeout = seconds(o.drain_s);
  cfg.session_move_when_busy = o.session_busy == "move";
  cfg.response_timeout = seconds(o.response_s);
  cfg.queue_timeout = seconds(o.queue_s);
  cfg.ban_duration = seconds(o.ban_s);
  cfg.ban_statuses = o.ban_statuses;
  cfg.health.base_cooldown = seconds(o.cooldown_s);
  cfg.health.max_cooldown = seconds(std::max(o.cooldown_s, o.max_cooldown_s));
  if (!(o.check_interval_s >= 0) || o.check_interval_s > 86400) {
    throw std::runtime_error("--check-interval: seconds between 0 (off) and 86400");
  }
  if (!(o.check_timeout_s > 0) || o.check_timeout_s > 3600) {
    throw std::runtime_error("--check-timeout: a positive number of seconds (at most 3600)");
  }
  cfg.check_interval = seconds(o.check_interval_s);
  cfg.check_timeout = seconds(o.check_timeout_s);
  if (o.check_interval_s > 0 && cfg.check_interval.count() == 0) {
    cfg.check_interval = std::chrono::milliseconds(1);  // tiny but on: 0 would mean off
  }
  if (!cfg.check_url.empty()) {
    if (auto parsed = net::parse_probe_target(cfg.check_url); !parsed.target) {
      throw std::runtime_error(fmt::format("--check-url {}: {}", proto::printable(cfg.check_url), parsed.error));
    }
  }
  if (cfg.learn_exit_ip && (cfg.check_url.empty() || cfg.check_interval.count() == 0)) {
    throw std::runtime_error(
        "--learn-exit-ip needs --check-url (an URL that answers with the caller's IP) and active "
        "checks (--check-interval > 0)");
  }
  cfg.dns = o.dns.to_config();
  if (cfg.limits.burst < 1) {
    throw std::runtime_error("--per-exit-burst must be at least 1");
  }
  if (!o.state_password_file.empty()) {
    if (!cfg.state_password.empty()) {
      throw std::runtime_error("--state-password and --state-password-file: give one of them");
    }
    cfg.state_password = read_secret_file("--state-password-file", o.state_password_file);
  }
  if (!cfg.state_url.empty()) {
    try {
      (void)fleet::parse_redis_url(cfg.state_url);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(fmt::format("--state: {}", e.what()));
    }
  } else if (!cfg.state_password.empty()) {
    throw std::runtime_error("--state-password without --state");
  }

  std::vector<proto::exit_spec> specs;
  std::string pool_origin;
  std::shared_ptr<gateway::pool_sources> sources;
  if (auto given = pool_sources_of(*o.cmd); given.empty()) {
    specs = proto::parse_pool_text(embedded_pool, "<embedded default pool>");
    pool_origin = "the embedded default pool (direct://: this machine's own address)";
  } else {
    // Every source must answer at startup (README, "Pool sources": why).
    sources = std::make_shared<gateway::pool_sources>(std::move(given), cfg.ca_file);
    sources->fetch_all_once();
    auto merged = sources->collect();
    for (const auto& d : merged.duplicates) {
      spdlog::warn("pool: exit left out, its id is taken: {}", d);
    }
    specs = std::move(merged.exits);
    pool_origin = sources->describe();
  }
  std::unordered_map<std::string, std::string> users;
  if (!cfg.users_file.empty()) {
    users = gateway::load_users(cfg.users_file);
    if (users.empty()) {
      throw std::runtime_error(cfg.users_file + ": no users in the users file");
    }
  }
  boost::asio::ip::tcp::endpoint ep;
  try {
    ep = gateway::parse_listen(cfg.listen);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("--listen {}: {}", cfg.listen, e.what()));
  }
  if (!ep.address().is_loopback() && users.empty() && cfg.allow_clients.empty() && !cfg.allow_open) {
    throw std::runtime_error(
        fmt::format("refusing to listen on {} without --users or --allow-client: anyone who can reach it could use "
                    "your exits (--port-map ports too). Add --users FILE or --allow-client CIDR, or --allow-open if "
                    "an open proxy is really what you want",
                    cfg.listen));
  }
  for (const auto& c : cfg.allow_clients) {
    // An allowlist of everyone is an open proxy under another name.
    if (c.ends_with("/0") && !cfg.allow_open) {
      throw std::runtime_error(
          fmt::format("--allow-client {} lets every address in: add --allow-open if an open "
                      "proxy is really what you want",
                      c));
    }
  }
  if (!cfg.admin_listen.empty()) {
    boost::asio::ip::tcp::endpoint aep;
    try {
      aep = gateway::parse_listen(cfg.admin_listen);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(fmt::format("--admin {}: {}", cfg.admin_listen, e.what()));
    }
    if (!aep.address().is_loopback() && users.empty()) {
      throw std::runtime_error(fmt::format(
          "refusing to serve the admin endpoint on {} without --users: it shows your exits to anyone who can "
          "reach it. Use a loopback address, or add --users FILE (its users may log in with Basic auth)",
          cfg.admin_listen));
    }
  }
  const std::size_t exits = specs.size();
  auto snap = pool::snapshot::build(std::move(specs), nullptr, cfg.limits);
  const std::string listen = cfg.listen;
  const std::string policy_name = o.policy;
  const bool auth = !users.empty();
  if (o.check_config) {
    // What run_server checks before it binds: ban patterns, CA file, denied networks, ports.
    gateway::shared_state checked(std::move(cfg), std::move(snap), std::move(users));
    const auto line = fmt::format("configuration ok: would listen on {}; {} exit{} from {}", listen, exits,
                                  exits == 1 ? "" : "s", pool_origin);
    if (json_log) {
      spdlog::info("{}", line);
    } else {
      std::printf("exitpool serve: %s\n", line.c_str());
    }
    return 0;
  }
  return gateway::run_server(std::move(cfg), std::move(sources), std::move(snap), std::move(users), [&](int threads) {
    const auto line = fmt::format(
        "listening on {} (HTTP proxy, CONNECT and SOCKS5 on this one port); {} exit{} from {}; {} thread{}; "
        "policy {}{}. Try: curl -x http://{} http://example.com/",
        listen, exits, exits == 1 ? "" : "s", pool_origin, threads, threads == 1 ? "" : "s", policy_name,
        auth ? "; authentication required" : "", listen);
    if (json_log) {
      spdlog::info("{}", line);  // every line a log shipper reads is JSON
      return;
    }
    std::printf("exitpool serve: %s\n", line.c_str());
    std::fflush(stdout);
  });
}

int serve(serve_options& o) {
  const auto format = ops::parse_log_format(o.log_format).value_or(ops::log_format::text);
  const bool json_log = format == ops::log_format::json;
  ops::init_logging(format, spdlog::level::from_str(o.log_level));
  if (format == ops::log_format::text) {
    // Client-controlled text (user names, hosts) with control bytes: escaped, never a forged line.
    spdlog::set_formatter(escaping_log_formatter());
  }
  try {
    return serve_with_logger(o, json_log);
  } catch (const std::exception& e) {
    if (!json_log) {
      throw;  // main prints "exitpool: ..." and exits 2
    }
    spdlog::error("{}", e.what());
    return 2;
  }
}

}  // namespace

void add_serve(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<serve_options>();
  auto* cmd =
      app.add_subcommand("serve", "Run the rotating proxy gateway (HTTP proxy, CONNECT and SOCKS5 on one port)");
  // Read by expand_config before parsing; declared here so --help lists it.
  cmd->add_option("--config", "TOML config file; keys are the long option names (pool = \"pool.txt\")");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  add_pool_options(cmd,
                   "Where the exits come from: a pool file (one exit per line) or an http(s):// URL answering "
                   "with a list (pool lines, host:port[:user:pass] lines or JSON); repeatable, the --pool-* "
                   "options after each describe it (default: the embedded direct:// pool)");
  cmd->add_option("--listen", o->cfg.listen, "Address and port to listen on")->capture_default_str();
  cmd->add_option("--threads", o->cfg.threads, "Shards (threads); 0 = one per CPU")->capture_default_str();
  cmd->add_option("--policy", o->policy, "Rotation policy: round-robin, random, least-inflight, fastest")
      ->capture_default_str();
  cmd->add_option("--users", o->cfg.users_file, "Users file (user:password per line); enables authentication");
  cmd->add_option("--retries", o->cfg.retries, "Further exits tried when a dial fails")->capture_default_str();
  cmd->add_option("--handshake-timeout", o->handshake_s, "Seconds a client has to send its request head")
      ->capture_default_str();
  cmd->add_option("--dial-timeout", o->dial_s, "Seconds for one dial through an exit (connect and proxy handshake)")
      ->capture_default_str();
  cmd->add_option("--happy-eyeballs-delay", o->happy_eyeballs_s,
                  "Seconds a direct exit's connection attempt to one address of a target leads before the next "
                  "is tried beside it (IPv6 first, then the families alternating; RFC 8305)")
      ->capture_default_str();
  cmd->add_option("--idle-timeout", o->idle_s, "Seconds a tunnel or kept-alive connection may stay silent")
      ->capture_default_str();
  cmd->add_option("--response-timeout", o->response_s,
                  "Seconds an exit has to answer a plain-HTTP request with a response head")
      ->capture_default_str();
  cmd->add_option("--sesstime", o->cfg.session_minutes, "Default sticky session lifetime in minutes")
      ->capture_default_str();
  cmd->add_option("--session-busy", o->session_busy,
                  "A sticky session whose exit is busy (rate limit, concurrency cap): wait for it (within "
                  "--queue-timeout) or move to another exit; per request: sessbusy-wait|move")
      ->check(CLI::IsMember({"wait", "move"}))
      ->capture_default_str();
  cmd->add_option("--ca-file", o->cfg.ca_file, "Extra CA certificates (PEM) for verifying https:// exits");
  cmd->add_option("--admin", o->cfg.admin_listen,
                  "Admin endpoint ADDR:PORT: /metrics (Prometheus), /exits (JSON), /healthz; off by default");
  cmd->add_flag("--watch", o->cfg.watch,
                "Reload when a pool file changes (SIGHUP always reloads, and fetches the --pool URLs)");
  cmd->add_option("--drain-timeout", o->drain_s, "Seconds SIGTERM waits for open sessions before closing them")
      ->capture_default_str();
  cmd->add_option("--per-exit-rate", o->cfg.limits.per_exit_rate,
                  "Requests or new tunnels per second per exit (token bucket); 0 = no limit")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--per-exit-host-rate", o->cfg.limits.per_exit_host_rate,
                  "Requests per second per exit and target host; 0 = no limit")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--per-exit-burst", o->cfg.limits.burst, "Bucket size of the per-exit rate limits")
      ->capture_default_str();
  cmd->add_option("--per-exit-concurrency", o->cfg.limits.per_exit_concurrency,
                  "Requests or tunnels in flight per exit; 0 = no limit")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-sticky-sessions", o->cfg.limits.max_sticky_sessions,
                  "Live sticky sessions kept at most (all shards); a new session beyond gets 429 until some expire")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 26));
  cmd->add_option("--queue-timeout", o->queue_s,
                  "Seconds a request waits for an exit with capacity before a 503 with Retry-After")
      ->capture_default_str();
  cmd->add_option("--ban-status", o->ban_statuses,
                  "HTTP statuses that mark (exit, target host) as banned; give it once per status")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->delimiter(',');
  cmd->add_option("--ban-pattern", o->cfg.ban_patterns,
                  "Regex (RE2 syntax) searched in a response's head and first 16 KiB of body: a match is a ban")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--ban-time", o->ban_s, "Seconds a ban lasts when the response has no Retry-After")
      ->capture_default_str();
  cmd->add_option("--ban-retries", o->cfg.ban_retries,
                  "Further exits tried for an idempotent request whose answer was a ban")
      ->capture_default_str();
  cmd->add_option("--eject-after", o->cfg.health.failures_to_eject, "Consecutive dial failures that eject an exit")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--cooldown", o->cooldown_s, "Seconds of a first ejection; doubles on each further one")
      ->capture_default_str();
  cmd->add_option("--max-cooldown", o->max_cooldown_s, "Longest ejection, seconds")->capture_default_str();
  cmd->add_option("--check-interval", o->check_interval_s,
                  "Seconds between active health checks of every exit (jittered by 10%); 0 = off")
      ->capture_default_str();
  cmd->add_option("--check-url", o->cfg.check_url,
                  "http:// URL fetched through each exit by the active checks (a 2xx is healthy); default: a "
                  "handshake with the exit alone (connect, TLS, SOCKS5 login), no target contacted");
  cmd->add_option("--check-timeout", o->check_timeout_s, "Seconds for one active check of one exit")
      ->capture_default_str();
  cmd->add_flag("--learn-exit-ip", o->cfg.learn_exit_ip,
                "Provider lines: fetch --check-url once through each new sticky virtual exit and show the IP the "
                "target saw in /exits (sessions the provider put on one IP are listed under shared_ips). Needs "
                "--check-url and --check-interval > 0; costs one request per session at the provider");
  cmd->add_option("--allow-ports", o->cfg.allow_ports, "Target ports clients may reach (squid's Safe_ports by default)")
      ->capture_default_str();
  cmd->add_option("--deny", o->cfg.deny,
                  "Networks clients may not reach (CIDR; repeatable), besides 0.0.0.0/8, 169.254.0.0/16, "
                  "multicast, fe80::/10 and the gateway's own ports")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_flag("--no-default-deny", o->cfg.no_default_deny, "Drop the built-in denied networks");
  cmd->add_option("--max-connections", o->cfg.max_connections, "Client connections at once; 0 = no limit")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-connections-per-user", o->cfg.max_connections_per_user,
                  "Client connections at once per user (with --users); 0 = no limit")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--queue-max", o->cfg.queue_max, "Requests that may wait for an exit with capacity at once")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--allow-open", o->cfg.allow_open, "Allow a non-loopback listener without --users or --allow-client");
  cmd->add_option("--port-map", o->cfg.port_maps,
                  "Sticky ports LOW-HIGH[:KEY=VALUE,...] (e.g. 10001-10100:country=us): each port listens on the "
                  "--listen address and is its own sticky session with those options; repeatable")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--allow-client", o->cfg.allow_clients,
                  "Client network (CIDR) let in without credentials, e.g. for browsers; with no --users, clients "
                  "outside every --allow-client are refused; repeatable")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  add_dns_options(cmd, o->dns);
  cmd->add_option("--state", o->cfg.state_url,
                  "Shared state for a fleet of gateways: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (bans, "
                  "ejections, sticky sessions, rate and concurrency limits); default: in-process");
  cmd->add_option("--state-password", o->cfg.state_password,
                  "Password for --state (better: --state-password-file; never logged)");
  cmd->add_option("--state-password-file", o->state_password_file, "File whose first line is the --state password");
  cmd->add_flag("--check-config", o->check_config,
                "Check the options, config file, users file and pool sources (URLs fetched once), print one line and "
                "exit (0: ok, 2: not)");
  cmd->add_option("--log-level", o->log_level, "trace, debug, info, warn, error, off")->capture_default_str();
  cmd->add_option("--log-format", o->log_format,
                  "Log lines on stderr: text, or json (one object per line: ts, level, logger, pid, tid, msg)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  ops::accept_durations(cmd, {"--handshake-timeout", "--dial-timeout", "--idle-timeout", "--response-timeout",
                              "--drain-timeout", "--queue-timeout", "--ban-time", "--cooldown", "--max-cooldown",
                              "--check-interval", "--check-timeout", "--happy-eyeballs-delay"});
  o->cmd = cmd;
  cmd->callback([&run, o] { run = [o] { return serve(*o); }; });
}

}  // namespace exitpool::cli
