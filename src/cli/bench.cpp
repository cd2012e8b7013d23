#include "cli/bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench/grid.hpp"
#include "bench/load.hpp"
#include "bench/report.hpp"
#include "fetch/input.hpp"
#include "ops/duration.hpp"
#include "pool/pool_file.hpp"
#include "proto/pool_line.hpp"
#include "proto/text.hpp"

namespace exitpool::cli {

namespace {

struct bench_options {
  std::string url;
  std::string via;
  std::string pool_file;
  std::string threads = "1,2,4";
  std::string concurrency = "1,16,256";
  double duration_s = 10;
  double timeout_s = 10;
  bool json = false;
  std::string plot;
  bool insecure = false;
  std::string ca_file;
  bool quiet = false;
};

int usage(const std::string& why) {
  std::fprintf(stderr, "exitpool bench: %s\n", why.c_str());
  return 2;
}

// The exits the load goes through, and how the report names them (never a password).
struct route {
  std::vector<proto::exit_spec> specs;
  std::string through;
};

route route_of(const bench_options& o) {
  route r;
  if (!o.via.empty()) {
    auto line = proto::parse_pool_line(o.via);
    if (!line.error.empty() || !line.spec) {
      throw std::invalid_argument(
          fmt::format("--via {}: {}", proto::clip(o.via), line.error.empty() ? "expected a gateway URL" : line.error));
    }
    r.through = "via " + proto::redacted_url(*line.spec);
    r.specs.push_back(std::move(*line.spec));
  } else if (!o.pool_file.empty()) {
    r.specs = pool::load_pool_file(o.pool_file);
    if (r.specs.empty()) {
      throw std::invalid_argument(fmt::format("--pool {}: no exits in the file", o.pool_file));
    }
    r.through = fmt::format("pool {} ({} exits)", o.pool_file, r.specs.size());
  } else {
    r.specs = proto::parse_pool_text("direct://\n", "<default pool>");
    r.through = "direct (no gateway, no pool)";
  }
  return r;
}

int run_bench(const bench_options& o) {
  using bench::grid_bounds;
  const auto threads = bench::parse_int_list(o.threads, 1, grid_bounds::max_threads);
  if (!threads.error.empty()) {
    return usage("--threads " + threads.error);
  }
  const auto inflight = bench::parse_int_list(o.concurrency, 1, grid_bounds::max_inflight);
  if (!inflight.error.empty()) {
    return usage("--concurrency " + inflight.error);
  }
  if (const auto why = bench::check_grid(threads.values, inflight.values, o.duration_s); !why.empty()) {
    return usage(why);
  }
  if (!(o.timeout_s > 0 && o.timeout_s <= grid_bounds::max_duration_s)) {
    return usage(fmt::format("--timeout {}: expected more than 0 and at most {} seconds", o.timeout_s,
                             grid_bounds::max_duration_s));
  }
  if (!fetch::parse_url(o.url).ok) {
    return usage(fmt::format("{}: expected an http:// or https:// URL with a host", proto::clip(o.url)));
  }
  route rt;
  try {
    rt = route_of(o);
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  std::ofstream plot;
  if (!o.plot.empty()) {
    plot.open(o.plot, std::ios::out | std::ios::trunc);  // checked now, written at the end
    if (!plot) {
      return usage(fmt::format("--plot {}: {}", o.plot, std::strerror(errno)));
    }
  }

  fetch::prepare_process();
  auto snap = pool::snapshot::build(std::move(rt.specs), nullptr, pool::limits_config{});
  pool::local_state state(pool::limits_config{}, pool::health_config{});
  bench::load_target t;
  t.url = o.url;
  t.snap = snap;
  t.state = &state;
  t.opts.user_agent = "exitpool-bench/0.1";
  t.opts.max_redirects = 0;  // a redirect is the answer measured, not a second request
  t.opts.timeout_ms = static_cast<long>(o.timeout_s * 1000);
  t.opts.connect_timeout_ms = t.opts.timeout_ms;
  t.opts.insecure = o.insecure;
  t.opts.ca_file = o.ca_file;
  t.opts.keep = 0;  // bodies are received and dropped

  bench::report r;
  r.url = o.url;
  r.through = rt.through;
  r.duration_s = o.duration_s;
  r.threads = threads.values;
  r.inflight = inflight.values;
  r.cells = bench::plan_grid(r.threads, r.inflight);
  const auto to_run = static_cast<std::size_t>(
      std::count_if(r.cells.begin(), r.cells.end(), [](const bench::cell& c) { return c.inflight >= c.threads; }));
  std::size_t n = 0;
  for (auto& c : r.cells) {
    if (c.inflight < c.threads) {
      continue;  // threads with nothing to do: not a setting anyone should use
    }
    c = bench::run_cell(t, c, std::chrono::duration<double>(o.duration_s));
    ++n;
    if (!o.quiet) {
      std::fprintf(stderr, "exitpool bench: %zu/%zu threads %d in flight %d: %.1f req/s, %llu errors\n", n, to_run,
                   c.threads, c.inflight, c.rps(), static_cast<unsigned long long>(c.errors));
    }
  }
  r.adv = bench::advise(r.cells);
  const std::string out = o.json ? bench::render_json(r) : bench::render_table(r);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  if (plot.is_open()) {
    plot << bench::render_svg(r);
    plot.close();
    if (!plot) {
      std::fprintf(stderr, "exitpool bench: --plot %s: cannot write\n", o.plot.c_str());
      return 1;
    }
  }
  return r.adv.b == bench::bound::failed ? 1 : 0;
}

}  // namespace

void add_bench(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<bench_options>();
  auto* cmd = app.add_subcommand(
      "bench", "Measure req/s over a grid of threads x requests in flight and advise: concurrency or parallelism");
  cmd->add_option("--config", "TOML config file; keys are the long option names (a --via password stays off argv)");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("url", o->url, "The URL to request (http:// or https://)")->required();
  auto* via = cmd->add_option("--via", o->via,
                              "Through this gateway: http://user:password@host:port (or https://, "
                              "socks5://, socks5h://)");
  cmd->add_option("--pool", o->pool_file, "Through the exits of this pool file (default: this machine, direct)")
      ->excludes(via);
  cmd->add_option("--threads", o->threads, "Thread counts to try, e.g. 1,2,4 (each: one libcurl multi handle)")
      ->capture_default_str();
  cmd->add_option("--concurrency", o->concurrency, "Requests in flight to try, all threads together, e.g. 1,16,256")
      ->capture_default_str();
  cmd->add_option("--duration", o->duration_s, "Seconds per cell of the grid")->capture_default_str();
  cmd->add_option("--timeout", o->timeout_s, "Seconds per request")->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object (the grid and the advice) instead of the table");
  cmd->add_option("--plot", o->plot, "Also write an SVG heat map of req/s over the grid to this file");
  cmd->add_flag("--insecure", o->insecure, "Do not verify the target's TLS certificate");
  cmd->add_option("--ca-file", o->ca_file, "CA bundle (PEM) for the target and an https:// gateway");
  cmd->add_flag("--quiet", o->quiet, "No line per cell on stderr while the grid runs");
  ops::accept_durations(cmd, {"--duration", "--timeout"});
  cmd->callback([o, &run] { run = [o] { return run_bench(*o); }; });
}

}  // namespace exitpool::cli
