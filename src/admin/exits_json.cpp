#include "admin/exits_json.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <map>

#include "pool/elastic.hpp"

namespace exitpool::admin {

namespace json = boost::json;

namespace {

json::value string_or_null(const std::string& s) {
  if (s.empty()) {
    return nullptr;
  }
  return json::string(s);
}

// "decided_by": "local" (this gateway) or "fleet" (another one, named by "gateway").
void decided_by(json::object& o, const std::string& gateway) {
  o["decided_by"] = gateway.empty() ? "local" : "fleet";
  if (!gateway.empty()) {
    o["gateway"] = gateway;
  }
}

}  // namespace

json::object exit_json(const pool::exit& e, pool::time_point now, const pool::ban_index* bans,
                       const pool::state* origins) {
  const auto& spec = e.spec();
  json::object o;
  o["id"] = spec.id;
  o["url"] = proto::redacted_url(spec);
  o["scheme"] = proto::scheme_name(spec.scheme);
  o["tags"] = exit_tags_json(spec);
  const auto state = e.state(now);
  o["state"] = pool::state_name(state);
  o["tier"] = e.tier();
  o["inflight"] = e.inflight();
  const std::uint64_t ok = e.successes();
  const std::uint64_t bad = e.failures();
  o["successes"] = ok;
  o["failures"] = bad;
  if (ok + bad == 0) {
    o["success_rate"] = nullptr;
  } else {
    o["success_rate"] = static_cast<double>(ok) / static_cast<double>(ok + bad);
  }
  const double us = e.ewma_latency_us();
  if (us < 0) {
    o["ewma_latency_ms"] = nullptr;
  } else {
    o["ewma_latency_ms"] = us / 1000.0;
  }
  o["consecutive_failures"] = e.consecutive_failures();
  double cooldown = 0;
  if (state == pool::exit_state::ejected) {
    cooldown = std::chrono::duration<double>(e.down_until() - now).count();
    cooldown = cooldown < 0 ? 0 : cooldown;
  }
  o["cooldown_remaining_s"] = cooldown;
  if (state == pool::exit_state::ejected && origins != nullptr) {
    decided_by(o, origins->ejection_origin(e, now));
  }
  json::array banned;
  const auto found = bans != nullptr ? bans->find(e.id_hash()) : pool::ban_index::const_iterator{};
  if (bans != nullptr && found != bans->end()) {
    for (const auto& [host, until] : found->second) {
      json::object b;
      b["host"] = host;
      b["remaining_s"] = std::max(0.0, std::chrono::duration<double>(until - now).count());
      if (origins != nullptr) {
        decided_by(b, origins->ban_origin(e, host, now));
      }
      banned.push_back(std::move(b));
    }
  }
  o["bans"] = std::move(banned);
  if (const auto* line = e.parent()) {
    o["line"] = line->id();
  }
  if (e.elastic()) {
    o["provider"] = provider_json(*spec.provider);
    json::array live;
    std::map<std::string, json::array> by_ip;
    for (const auto& v : e.virtuals()->live(now)) {
      json::object vo = exit_json(*v, now, bans, origins);
      const std::string ip = e.virtuals()->learned_ip(v->id_hash());
      vo["exit_ip"] = string_or_null(ip);
      if (!ip.empty()) {
        by_ip[ip].push_back(json::string(v->id()));
      }
      live.push_back(std::move(vo));
    }
    o["virtual_exits"] = std::move(live);
    // --learn-exit-ip: sessions the provider happened to put on one IP.
    json::object shared;
    for (auto& [ip, ids] : by_ip) {
      if (ids.size() > 1) {
        shared[ip] = std::move(ids);
      }
    }
    o["shared_ips"] = std::move(shared);
  }
  return o;
}

json::object provider_json(const proto::provider_line& p) {
  json::object o;
  o["preset"] = string_or_null(p.preset);
  o["user_template"] = p.user_tpl.source;
  o["pass_template"] = p.pass_tpl.source;
  auto list = [](bool any, const std::vector<std::string>& values) -> json::value {
    if (any) {
      return json::string("*");
    }
    json::array a;
    for (const auto& v : values) {
      a.push_back(json::string(v));
    }
    return a;
  };
  o["countries"] = list(p.any_country, p.countries);
  o["cities"] = list(p.any_city, p.cities);
  o["rotate"] = p.rotate;
  o["rate"] = p.rate;
  o["max_sessions"] = p.max_sessions;
  return o;
}

json::object exit_tags_json(const proto::exit_spec& spec) {
  json::object tags;
  tags["country"] = string_or_null(spec.country);
  tags["city"] = string_or_null(spec.city);
  tags["type"] = string_or_null(spec.type);
  tags["weight"] = spec.weight;
  for (const auto& [k, v] : spec.tags) {
    tags[k] = v;
  }
  return tags;
}

json::object source_json(const pool::source_status& s) {
  auto optional = [](const std::optional<double>& v) { return v ? json::value(*v) : json::value(nullptr); };
  json::object o;
  o["source"] = s.name;
  o["kind"] = s.url ? "url" : "file";
  o["exits"] = s.exits;
  o["ok"] = s.ok;
  o["error"] = string_or_null(s.last_error);
  o["failures"] = s.failures;
  o["refresh_s"] = s.refresh_s;
  o["last_success_age_s"] = optional(s.last_success_age_s);
  o["next_fetch_in_s"] = optional(s.next_fetch_in_s);
  json::object fetches;
  fetches["changed"] = s.fetches_changed;
  fetches["unchanged"] = s.fetches_unchanged;
  fetches["failed"] = s.fetches_failed;
  o["fetches"] = std::move(fetches);
  return o;
}

json::value exits_json(const pool::snapshot& snap, pool::time_point now, const pool::state* bans,
                       std::span<const pool::source_status> sources) {
  const pool::ban_index index = bans != nullptr ? bans->bans_by_exit(now) : pool::ban_index{};
  json::array exits;
  exits.reserve(snap.size());
  for (const auto& e : snap.exits()) {
    exits.push_back(exit_json(*e, now, &index, bans));
  }
  json::array listed;
  for (const auto& src : sources) {
    listed.push_back(source_json(src));
  }
  json::object root;
  root["exits"] = std::move(exits);
  root["sources"] = std::move(listed);
  return root;
}

std::string render_exits_json(const pool::snapshot& snap, pool::time_point now, const pool::state* bans,
                              std::span<const pool::source_status> sources) {
  std::string s = json::serialize(exits_json(snap, now, bans, sources));
  s += '\n';
  return s;
}

}  // namespace exitpool::admin
