#include "cli/check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "admin/exits_json.hpp"
#include "cli/dns_options.hpp"
#include "cli/pool_options.hpp"
#include "gateway/pool_sources.hpp"
#include "net/probe.hpp"
#include "net/tls.hpp"
#include "ops/duration.hpp"
#include "pool/elastic.hpp"
#include "pool/pool.hpp"
#include "pool/pool_file.hpp"
#include "pool/sticky.hpp"
#include "proto/pool_line.hpp"
#include "proto/text.hpp"

namespace exitpool::cli {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using net::awaitable;

struct check_options {
  const CLI::App* cmd = nullptr;  // for the --pool sources (cli/pool_options.hpp), after the parse
  std::string url;
  double timeout_s = 10;
  int concurrency = 64;
  bool json = false;
  std::string ca_file;
  dns_options dns;
};

// Shared by the workers of one run; they all live on one single-threaded io_context.
struct check_job {
  std::shared_ptr<const pool::snapshot> snap;
  std::vector<net::probe_result> results;
  std::vector<std::string> via;  // a provider line: the virtual exit checked (pool/elastic.hpp)
  std::size_t next = 0;
  net::probe_target target;
  net::dial_options opts;
  std::chrono::milliseconds timeout{};
  std::uint64_t seed = 0;
};

// Takes exits off the shared list until none is left: `--concurrency` of these run at once.
awaitable<void> worker(std::shared_ptr<check_job> job) {
  while (job->next < job->results.size()) {
    const std::size_t i = job->next++;
    std::shared_ptr<pool::exit> ex = job->snap->exits()[i];
    if (ex->elastic()) {
      // A provider line: checked through one virtual exit with a fresh provider session,
      // so the IP shown is the one such a session got.
      const pool::filter any;
      ex = pool::make_virtual(*ex, {.f = &any, .session = pool::mix64(ex->id_hash(), job->seed)}, {});
      job->via[i] = ex->id();
    }
    job->results[i] = co_await net::probe_exit(*ex, &job->target, job->opts, job->timeout);
  }
}

std::string describe_tags(const proto::exit_spec& s) {
  std::string out;
  auto add = [&out](std::string_view k, std::string_view v) {
    if (!out.empty()) {
      out += ' ';
    }
    out += k;
    out += '=';
    out += v;
  };
  if (!s.country.empty()) {
    add("country", s.country);
  }
  if (!s.city.empty()) {
    add("city", s.city);
  }
  if (!s.type.empty()) {
    add("type", s.type);
  }
  if (s.weight != 1.0) {
    add("weight", fmt::format("{}", s.weight));
  }
  for (const auto& [k, v] : s.tags) {
    add(k, v);
  }
  return out;
}

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

void print_json(const check_job& job) {
  json::array arr;
  for (std::size_t i = 0; i < job.results.size(); ++i) {
    const auto& spec = job.snap->exits()[i]->spec();
    const auto& r = job.results[i];
    json::object o;
    o["id"] = spec.id;
    o["url"] = proto::redacted_url(spec);
    o["scheme"] = proto::scheme_name(spec.scheme);
    o["ok"] = r.ok;
    o["result"] = r.ok ? "ok" : "error";
    o["error"] = r.ok ? json::value(nullptr) : json::value(r.error);
    const auto type = pool::proxy_status_name(r.kind);
    o["error_type"] = type.empty() ? json::value(nullptr) : json::value(type);
    o["latency_ms"] = round3(r.latency_ms);
    o["dial_ms"] = r.dial_ms < 0 ? json::value(nullptr) : json::value(round3(r.dial_ms));
    o["status"] = r.status == 0 ? json::value(nullptr) : json::value(r.status);
    o["exit_ip"] = r.exit_ip.empty() ? json::value(nullptr) : json::value(r.exit_ip);
    if (!job.via[i].empty()) {
      o["virtual_exit"] = job.via[i];
    }
    o["tags"] = admin::exit_tags_json(spec);
    arr.push_back(std::move(o));
  }
  std::string s = json::serialize(arr);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

void print_table(const check_job& job) {
  std::vector<std::array<std::string, 7>> rows;
  rows.push_back({"EXIT", "RESULT", "LATENCY", "STATUS", "EXIT IP", "TAGS", "ERROR"});
  std::size_t ok = 0;
  for (std::size_t i = 0; i < job.results.size(); ++i) {
    const auto& spec = job.snap->exits()[i]->spec();
    const auto& r = job.results[i];
    ok += r.ok ? 1 : 0;
    const std::string name = job.via[i].empty() ? spec.id : job.via[i];
    rows.push_back({proto::printable(name), r.ok ? "ok" : "error",
                    r.latency_ms < 10 ? fmt::format("{:.1f} ms", r.latency_ms) : fmt::format("{:.0f} ms", r.latency_ms),
                    r.status ? std::to_string(r.status) : "-", r.exit_ip.empty() ? "-" : r.exit_ip,
                    describe_tags(spec).empty() ? "-" : proto::printable(describe_tags(spec)), r.error});
  }
  std::array<std::size_t, 7> width{};
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) {
        line += std::string(width[c] - row[c].size() + 2, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') {
      line.pop_back();
    }
    std::printf("%s\n", line.c_str());
  }
  std::printf("%zu of %zu exits ok\n", ok, job.results.size());
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "exitpool check: %s\n", msg.c_str());
  return 2;
}

int check(const check_options& o) {
  const auto sources = pool_sources_of(*o.cmd);  // throws: main prints it and exits 2
  if (sources.empty()) {
    return usage_error("--pool FILE|URL is required");
  }
  if (o.url.empty()) {
    return usage_error(
        "--url is required: an http:// endpoint you control that answers with the caller's IP address as the "
        "first line of its body (e.g. nginx: return 200 \"$remote_addr\\n\";). There is no default, so that a "
        "check never contacts a service you did not choose.");
  }
  auto parsed = net::parse_probe_target(o.url);
  if (!parsed.target) {
    return usage_error(fmt::format("--url {}: {}", proto::printable(o.url), parsed.error));
  }
  if (o.concurrency < 1) {
    return usage_error("--concurrency must be at least 1");
  }
  if (!(o.timeout_s > 0) || o.timeout_s > 86400) {
    return usage_error("--timeout must be a positive number of seconds");
  }
  // Pool source errors throw; main prints "exitpool: FILE:LINE: message" and exits 2.
  const auto dns = o.dns.to_config();
  gateway::pool_sources pool(sources, o.ca_file);
  pool.fetch_all_once();
  auto merged = pool.collect();
  for (const auto& d : merged.duplicates) {
    std::fprintf(stderr, "exitpool check: exit left out, its id is taken: %s\n", d.c_str());
  }
  auto specs = std::move(merged.exits);

  auto job = std::make_shared<check_job>();
  job->snap = pool::snapshot::build(std::move(specs));
  job->results.resize(job->snap->size());
  job->via.resize(job->snap->size());
  job->seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  job->target = std::move(*parsed.target);
  job->timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  auto tls_verified = net::make_tls_context(true, o.ca_file);
  auto tls_insecure = net::make_tls_context(false, "");
  job->opts.timeout = job->timeout;
  job->opts.tls_verified = &tls_verified;
  job->opts.tls_insecure = &tls_insecure;

  asio::io_context io(1);
  net::resolver resolver(io.get_executor(), dns);
  job->opts.resolver = &resolver;
  const std::size_t workers = std::min<std::size_t>(static_cast<std::size_t>(o.concurrency), job->results.size());
  for (std::size_t k = 0; k < workers; ++k) {
    asio::co_spawn(io, worker(job), [](std::exception_ptr e) {
      if (e) {
        std::rethrow_exception(e);  // out of io.run(): a bug, reported by main
      }
    });
  }
  io.run();

  if (o.json) {
    print_json(*job);
  } else {
    print_table(*job);
  }
  std::fflush(stdout);
  const bool all_ok = std::all_of(job->results.begin(), job->results.end(), [](const auto& r) { return r.ok; });
  return all_ok ? 0 : 1;
}

}  // namespace

void add_check(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<check_options>();
  auto* cmd = app.add_subcommand(
      "check",
      "Check every exit of a pool once, concurrently: dial it, fetch --url through it, report result, latency "
      "and the exit IP the target saw. Exit code 0: all ok, 1: some failed, 2: usage or pool file error");
  cmd->add_option("--config", "TOML config file; keys are the long option names (pool = \"pool.txt\")");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  add_pool_options(cmd,
                   "Required. A pool file or an http(s):// URL answering with a list, as for serve; "
                   "repeatable, the --pool-* options after each describe it");
  cmd->add_option("--url", o->url,
                  "Required. An http:// URL you control that answers with the caller's IP address as the first "
                  "line of its body (nginx: return 200 \"$remote_addr\\n\";). No default: a check never "
                  "contacts a service you did not choose");
  cmd->add_option("--timeout", o->timeout_s, "Seconds for each exit's whole check (dial, request, response)")
      ->capture_default_str();
  cmd->add_option("--concurrency", o->concurrency, "Exits checked at the same time")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print a JSON array (one object per exit) instead of a table");
  cmd->add_option("--ca-file", o->ca_file, "Extra CA certificates (PEM) for verifying https:// exits");
  add_dns_options(cmd, o->dns);
  ops::accept_durations(cmd, {"--timeout"});
  o->cmd = cmd;
  cmd->callback([&run, o] { run = [o] { return check(*o); }; });
}

}  // namespace exitpool::cli
