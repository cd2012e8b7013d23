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
    case request_outcome::no_capacity:
      return "no_capacity";
    case request_outcome::refused:
      return "refused";
  }
  return "unknown";
}

request_outcome outcome_of(pool::failure f) {
  using pool::failure;
  switch (f) {
    case failure::none:
      return request_outcome::ok;
    case failure::no_match:
      return request_outcome::no_exit;
    case failure::no_capacity:
    case failure::queue_full:
      return request_outcome::no_capacity;
    case failure::target_prohibited:
      return request_outcome::refused;
    case failure::dns_timeout:
    case failure::connection_timeout:
    case failure::response_timeout:
      return request_outcome::timeout;
    case failure::bad_request:
    case failure::auth_failed:
    case failure::client_limit:
    case failure::overloaded:
      return request_outcome::client_error;
    default:
      return request_outcome::dial_failed;
  }
}

std::size_t dial_error_index(pool::failure f) {
  // Built once from the failures' Proxy-Status names; then one load per dial.
  static const auto table = [] {
    std::array<std::uint8_t, pool::failure_count> t{};
    std::size_t internal = 0;
    for (std::size_t i = 0; i < dial_error_types.size(); ++i) {
      if (dial_error_types[i] == "proxy_internal_error") {
        internal = i;
      }
    }
    for (std::size_t k = 0; k < pool::failure_count; ++k) {
      t[k] = static_cast<std::uint8_t>(internal);
      const auto name = pool::proxy_status_name(static_cast<pool::failure>(k));
      for (std::size_t i = 0; i < dial_error_types.size(); ++i) {
        if (dial_error_types[i] == name) {
          t[k] = static_cast<std::uint8_t>(i);
        }
      }
    }
    return t;
  }();
  return table[static_cast<std::size_t>(f)];
}

void histogram_totals::add(const latency_histogram& h) {
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    buckets[i] += h.buckets[i].get();
  }
  count += h.count.get();
  sum_ns += h.sum_ns.get();
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
    for (std::size_t i = 0; i < t.session_waits.size(); ++i) {
      t.session_waits[i] += s.session_waits[i].get();
    }
    for (std::size_t i = 0; i < t.session_moves.size(); ++i) {
      t.session_moves[i] += s.session_moves[i].get();
    }
    t.bytes_client_to_upstream += s.bytes_client_to_upstream.get();
    t.bytes_upstream_to_client += s.bytes_upstream_to_client.get();
    t.active_tunnels += s.active_tunnels.get();
    t.dial_latency.add(s.dial_latency);
    for (std::size_t i = 0; i < t.dns_lookups.size(); ++i) {
      t.dns_lookups[i] += s.dns_lookups[i].get();
    }
    for (std::size_t i = 0; i < t.dns_failures.size(); ++i) {
      t.dns_failures[i] += s.dns_failures[i].get();
    }
    t.dns_latency.add(s.dns_latency);
  }
  return t;
}

}  // namespace exitpool::admin
