#include "admin/metrics.hpp"

namespace exitpool::admin {

const char* protocol_name(client_protocol p) {
  switch (p) {
    case client_protocol::http:
      return "http";
    case client_protocol::connect:
      return "connect";
    case client_protocol::socks5:
      return "socks5";
  }
  return "unknown";
}

const char* outcome_name(request_outcome o) {
  switch (o) {
    case request_outcome::ok:
      return "ok";
    case request_outcome::client_error:
      return "client_error";
    case request_outcome::no_exit:
      return "no_exit";
    case request_outcome::dial_failed:
      return "dial_failed";
    case request_outcome::timeout:
      return "timeout";
  }
  return "unknown";
}

std::size_t dial_error_index(std::string_view error_type) {
  for (std::size_t i = 0; i < dial_error_types.size(); ++i) {
    if (dial_error_types[i] == error_type) {
      return i;
    }
  }
  static constexpr std::size_t internal = [] {
    for (std::size_t i = 0; i < dial_error_types.size(); ++i) {
      if (dial_error_types[i] == "proxy_internal_error") {
        return i;
      }
    }
    return std::size_t{0};
  }();
  return internal;
}

metrics_totals aggregate(const metrics_registry& reg) {
  metrics_totals t;
  for (const auto& sp : reg.shards) {
    if (!sp) {
      continue;
    }
    const shard_metrics& s = *sp;
    for (std::size_t p = 0; p < client_protocol_count; ++p) {
      t.accepted[p] += s.accepted[p].get();
      for (std::size_t o = 0; o < request_outcome_count; ++o) {
        t.requests[p][o] += s.requests[p][o].get();
      }
    }
    for (std::size_t i = 0; i < t.http_responses.size(); ++i) {
      t.http_responses[i] += s.http_responses[i].get();
    }
    t.dial_attempts += s.dial_attempts.get();
    for (std::size_t i = 0; i < t.dial_failures.size(); ++i) {
      t.dial_failures[i] += s.dial_failures[i].get();
    }
    t.retries += s.retries.get();
    t.bans += s.bans.get();
    t.bytes_client_to_upstream += s.bytes_client_to_upstream.get();
    t.bytes_upstream_to_client += s.bytes_upstream_to_client.get();
    t.active_tunnels += s.active_tunnels.get();
    for (std::size_t i = 0; i < t.dial_latency_hist.size(); ++i) {
      t.dial_latency_hist[i] += s.dial_latency_hist[i].get();
    }
    t.dial_latency_count += s.dial_latency_count.get();
    t.dial_latency_sum_ns += s.dial_latency_sum_ns.get();
  }
  return t;
}

}  // namespace exitpool::admin
