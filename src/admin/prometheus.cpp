#include "admin/prometheus.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <iterator>

namespace exitpool::admin {

namespace {

// Writes one metric family: HELP and TYPE once, then its samples.
class family_writer {
 public:
  explicit family_writer(std::string& out) : out_(out) {}

  void begin(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type);
  }

  // `labels` is already rendered: `a="x",b="y"` (escaped) or empty.
  void sample(std::string_view suffix, std::string_view labels, std::uint64_t v) {
    head(suffix, labels);
    fmt::format_to(std::back_inserter(out_), "{}\n", v);
  }
  void sample(std::string_view suffix, std::string_view labels, std::int64_t v) {
    head(suffix, labels);
    fmt::format_to(std::back_inserter(out_), "{}\n", v);
  }
  void sample(std::string_view suffix, std::string_view labels, double v) {
    head(suffix, labels);
    if (std::isnan(v)) {
      out_ += "NaN\n";
    } else if (std::isinf(v)) {
      out_ += v > 0 ? "+Inf\n" : "-Inf\n";
    } else {
      fmt::format_to(std::back_inserter(out_), "{}\n", v);
    }
  }

 private:
  void head(std::string_view suffix, std::string_view labels) {
    out_ += name_;
    out_ += suffix;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
  }

  static std::string escape_help(std::string_view h) {
    std::string r;
    for (char c : h) {
      if (c == '\\') {
        r += "\\\\";
      } else if (c == '\n') {
        r += "\\n";
      } else {
        r += c;
      }
    }
    return r;
  }

  std::string& out_;
  std::string_view name_;
};

std::string label(std::string_view name, std::string_view value) {
  return fmt::format("{}=\"{}\"", name, escape_label_value(value));
}

const char* const status_classes[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

// A histogram family. Count and +Inf come from the buckets themselves, so the histogram
// is self-consistent even when the scrape races a shard's update.
void write_histogram(family_writer& w, std::string_view name, std::string_view help, const histogram_totals& h) {
  w.begin(name, "histogram", help);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < latency_buckets.size(); ++i) {
    cumulative += h.buckets[i];
    w.sample("_bucket", label("le", latency_bucket_labels[i]), cumulative);
  }
  cumulative += h.buckets.back();
  w.sample("_bucket", label("le", "+Inf"), cumulative);
  w.sample("_sum", "", static_cast<double>(h.sum_ns) / 1e9);
  w.sample("_count", "", cumulative);
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string r;
  r.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        r += "\\\\";
        break;
      case '"':
        r += "\\\"";
        break;
      case '\n':
        r += "\\n";
        break;
      default:
        r += c;
    }
  }
  return r;
}

std::string render_prometheus(const metrics_registry& metrics, const pool::snapshot& snap, pool::time_point now,
                              const pool::state* bans, std::span<const pool::source_status> sources) {
  const metrics_totals t = aggregate(metrics);
  std::string out;
  out.reserve(4096 + snap.size() * 512);
  family_writer w(out);

  w.begin("exitpool_client_connections_total", "counter",
          "Client connections accepted, by the protocol the client spoke.");
  for (std::size_t p = 0; p < client_protocol_count; ++p) {
    w.sample("", label("protocol", protocol_name(static_cast<client_protocol>(p))), t.accepted[p]);
  }

  w.begin("exitpool_requests_total", "counter", "Client requests (HTTP, CONNECT, SOCKS5 CONNECT) by outcome.");
  for (std::size_t p = 0; p < client_protocol_count; ++p) {
    for (std::size_t o = 0; o < request_outcome_count; ++o) {
      w.sample("",
               label("protocol", protocol_name(static_cast<client_protocol>(p))) + "," +
                   label("outcome", outcome_name(static_cast<request_outcome>(o))),
               t.requests[p][o]);
    }
  }

  w.begin("exitpool_http_responses_total", "counter", "HTTP responses sent to clients, by status class.");
  for (std::size_t i = 0; i < t.http_responses.size(); ++i) {
    w.sample("", label("code", status_classes[i]), t.http_responses[i]);
  }

  w.begin("exitpool_dial_attempts_total", "counter", "Dials through an exit, successful or not.");
  w.sample("", "", t.dial_attempts);

  w.begin("exitpool_dial_failures_total", "counter",
          "Failed dials through an exit, by RFC 9209 Proxy-Status error type.");
  for (std::size_t i = 0; i < dial_error_types.size(); ++i) {
    w.sample("", label("error", dial_error_types[i]), t.dial_failures[i]);
  }

  w.begin("exitpool_retries_total", "counter", "Dials retried on another exit after a failed dial.");
  w.sample("", "", t.retries);

  w.begin("exitpool_relayed_bytes_total", "counter", "Payload bytes relayed between clients and upstreams.");
  w.sample("", label("direction", "client_to_upstream"), t.bytes_client_to_upstream);
  w.sample("", label("direction", "upstream_to_client"), t.bytes_upstream_to_client);

  w.begin("exitpool_bans_total", "counter",
          "Exits banned for a target host (ban status or pattern seen in a response through them).");
  w.sample("", "", t.bans);

  if (bans != nullptr) {
    w.begin("exitpool_active_bans", "gauge", "(exit, target host) bans in force now.");
    w.sample("", "", static_cast<std::uint64_t>(bans->ban_count(now)));
  }

  w.begin("exitpool_session_waits_total", "counter",
          "Sticky-session requests that waited for their session's exit (usable but busy), by the limit "
          "that held it.");
  for (std::size_t i = 1; i < pool::session_wait_count; ++i) {
    w.sample("", label("cause", pool::session_wait_name(static_cast<pool::session_wait>(i))), t.session_waits[i]);
  }
  w.begin("exitpool_session_moves_total", "counter",
          "Sticky sessions that left their exit for another one, by why the exit could not be used.");
  for (std::size_t i = 1; i < pool::session_move_count; ++i) {
    w.sample("", label("cause", pool::session_move_name(static_cast<pool::session_move>(i))), t.session_moves[i]);
  }

  w.begin("exitpool_active_tunnels", "gauge", "Tunnels (CONNECT and SOCKS5) open now.");
  w.sample("", "", t.active_tunnels);

  w.begin("exitpool_pool_reloads_total", "counter",
          "Pool file reloads (SIGHUP, --watch): ok, or refused (a bad file; the old pool kept serving).");
  w.sample("", label("result", "ok"), metrics.pool_reloads.load(std::memory_order_relaxed));
  w.sample("", label("result", "refused"), metrics.pool_reloads_refused.load(std::memory_order_relaxed));
  w.begin("exitpool_state_backend_up", "gauge",
          "1 while the shared state backend (--state) is reachable or the state is in-process, 0 while the "
          "gateway serves from its local mirror alone.");
  w.sample("", "", static_cast<std::int64_t>(metrics.state_backend_up.load(std::memory_order_relaxed)));
  w.begin("exitpool_fleet_gateways", "gauge",
          "Gateways of the fleet alive (heartbeats in the shared state); 1 without --state.");
  w.sample("", "", static_cast<std::int64_t>(metrics.fleet_gateways.load(std::memory_order_relaxed)));
  w.begin("exitpool_pool_reload_seconds", "gauge",
          "How long the last successful pool reload took, from reading the file to the new pool serving.");
  w.sample("", "", static_cast<double>(metrics.pool_reload_ns.load(std::memory_order_relaxed)) / 1e9);

  if (!sources.empty()) {
    w.begin("exitpool_pool_source_exits", "gauge",
            "Exits in the last good list of each pool source (--pool: a file or a URL).");
    for (const auto& src : sources) {
      w.sample("", label("source", src.name), static_cast<std::uint64_t>(src.exits));
    }
    w.begin("exitpool_pool_source_up", "gauge",
            "1 when the source's latest fetch or read succeeded, 0 while it fails (its last good list serves).");
    for (const auto& src : sources) {
      w.sample("", label("source", src.name), static_cast<std::uint64_t>(src.ok ? 1 : 0));
    }
    w.begin("exitpool_pool_source_fetches_total", "counter",
            "Fetches of URL sources and reads of file sources: changed (a new list, the pool reloaded), unchanged "
            "(304 Not Modified or the same list), failed (error, bad status, unparsable or empty answer).");
    for (const auto& src : sources) {
      const auto name = label("source", src.name);
      w.sample("", name + "," + label("result", "changed"), src.fetches_changed);
      w.sample("", name + "," + label("result", "unchanged"), src.fetches_unchanged);
      w.sample("", name + "," + label("result", "failed"), src.fetches_failed);
    }
    w.begin("exitpool_pool_source_last_success_age_seconds", "gauge",
            "Seconds since the source last gave a good list (absent before the first).");
    for (const auto& src : sources) {
      if (src.last_success_age_s) {
        w.sample("", label("source", src.name), *src.last_success_age_s);
      }
    }
  }

  write_histogram(w, "exitpool_dial_duration_seconds",
                  "Time to dial through an exit (connect and proxy handshake), successful or not.", t.dial_latency);

  w.begin("exitpool_dns_lookups_total", "counter",
          "Lookups of target and exit host names by the shards' resolvers (IP literals are not looked up), by "
          "how each was answered: from the cache, by joining a query in flight for the name, or by a new query.");
  for (std::size_t i = 0; i < t.dns_lookups.size(); ++i) {
    w.sample("", label("source", net::dns::source_name(static_cast<net::dns::source>(i))), t.dns_lookups[i]);
  }
  w.begin("exitpool_dns_cache_hits_total", "counter", "Lookups answered from a shard's DNS cache.");
  w.sample("", "", t.dns_lookups[static_cast<std::size_t>(net::dns::source::cache)]);
  w.begin("exitpool_dns_failures_total", "counter",
          "Lookups that gave no address, by kind (not_found: NXDOMAIN, no_address: NODATA, server_failure: "
          "SERVFAIL or REFUSED, timeout, unreachable, bad_name, internal); cached failures included.");
  for (std::size_t i = 1; i < t.dns_failures.size(); ++i) {
    w.sample("", label("kind", net::dns::status_name(static_cast<net::dns::status>(i))), t.dns_failures[i]);
  }
  write_histogram(w, "exitpool_dns_lookup_duration_seconds", "Time to look up a name, cache hits included.",
                  t.dns_latency);

  // ---- per exit, from the snapshot's atomics ----
  const auto& exits = snap.exits();
  std::vector<std::string> ids;
  ids.reserve(exits.size());
  constexpr std::array<pool::exit_state, 3> states = {pool::exit_state::healthy, pool::exit_state::ejected,
                                                      pool::exit_state::probing};
  std::array<std::uint64_t, states.size()> by_state{};
  for (const auto& e : exits) {
    ids.push_back(label("exit", e->id()));
    const auto st = e->state(now);
    for (std::size_t k = 0; k < states.size(); ++k) {
      by_state[k] += states[k] == st ? 1 : 0;
    }
  }

  w.begin("exitpool_exits", "gauge",
          "Exits in the current pool, by health state (healthy, ejected: in a cool-down, probing: on trial).");
  for (std::size_t k = 0; k < states.size(); ++k) {
    w.sample("", label("state", pool::state_name(states[k])), by_state[k]);
  }

  w.begin("exitpool_exit_up", "gauge", "1 when the exit may be chosen (healthy or probing), 0 while it is ejected.");
  for (std::size_t i = 0; i < exits.size(); ++i) {
    w.sample("", ids[i], static_cast<std::uint64_t>(exits[i]->usable(now) ? 1 : 0));
  }

  w.begin("exitpool_exit_dial_successes_total", "counter", "Successful dials through the exit.");
  for (std::size_t i = 0; i < exits.size(); ++i) {
    w.sample("", ids[i], exits[i]->successes());
  }

  w.begin("exitpool_exit_dial_failures_total", "counter", "Failed dials that were the exit's fault.");
  for (std::size_t i = 0; i < exits.size(); ++i) {
    w.sample("", ids[i], exits[i]->failures());
  }

  w.begin("exitpool_exit_inflight", "gauge", "Connections and requests using the exit now.");
  for (std::size_t i = 0; i < exits.size(); ++i) {
    w.sample("", ids[i], static_cast<std::int64_t>(exits[i]->inflight()));
  }

  w.begin("exitpool_exit_consecutive_failures", "gauge", "Failed dials in a row through the exit.");
  for (std::size_t i = 0; i < exits.size(); ++i) {
    w.sample("", ids[i], static_cast<std::int64_t>(exits[i]->consecutive_failures()));
  }

  // Exits without a latency sample yet have no series (absent, rather than a fake 0).
  w.begin("exitpool_exit_ewma_dial_latency_seconds", "gauge",
          "Exponentially weighted moving average of the exit's dial latency.");
  for (std::size_t i = 0; i < exits.size(); ++i) {
    const double us = exits[i]->ewma_latency_us();
    if (us >= 0) {
      w.sample("", ids[i], us / 1e6);
    }
  }
  return out;
}

}  // namespace exitpool::admin
