#include "admin/dashboard_json.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <map>
#include <set>

#include "admin/exits_json.hpp"
#include "proto/text.hpp"

namespace exitpool::admin {

namespace json = boost::json;

namespace {

// application/x-www-form-urlencoded: '+' is a space, %XX a byte; a bad escape is kept as is.
std::string form_decode(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '+') {
      out += ' ';
    } else if (v[i] == '%' && i + 2 < v.size() && proto::hex_value(v[i + 1]) >= 0 && proto::hex_value(v[i + 2]) >= 0) {
      out += static_cast<char>(proto::hex_value(v[i + 1]) * 16 + proto::hex_value(v[i + 2]));
      i += 2;
    } else {
      out += v[i];
    }
  }
  return out;
}

double seconds_of(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

double per_second(std::uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
}

json::object traffic_json(const metrics_totals& t, const pool::state* bans, pool::time_point now) {
  json::object o;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  json::object by_outcome;
  for (std::size_t k = 0; k < request_outcome_count; ++k) {
    std::uint64_t n = 0;
    for (std::size_t p = 0; p < client_protocol_count; ++p) {
      n += t.requests[p][k];
    }
    by_outcome[outcome_name(static_cast<request_outcome>(k))] = n;
    requests += n;
    if (k != static_cast<std::size_t>(request_outcome::ok)) {
      errors += n;
    }
  }
  o["requests"] = requests;
  o["errors"] = errors;
  o["by_outcome"] = std::move(by_outcome);
  o["bytes_up"] = t.bytes_client_to_upstream;
  o["bytes_down"] = t.bytes_upstream_to_client;
  o["active_tunnels"] = t.active_tunnels;
  o["dial_attempts"] = t.dial_attempts;
  std::uint64_t dial_failures = 0;
  for (auto f : t.dial_failures) {
    dial_failures += f;
  }
  o["dial_failures"] = dial_failures;
  o["bans"] = t.bans;
  o["active_bans"] = bans != nullptr ? bans->ban_count(now) : 0;
  return o;
}

json::object history_json(const traffic_history& h) {
  constexpr auto step = std::chrono::seconds(10);
  constexpr auto span = std::chrono::hours(1);
  json::object o;
  o["step_s"] = step.count();
  o["span_s"] = std::chrono::duration_cast<std::chrono::seconds>(span).count();
  json::array steps;
  for (const auto& s : h.steps(step, span)) {
    steps.push_back(json::array{s.seconds_ago, s.seconds, s.requests, s.errors, s.bytes_up, s.bytes_down, s.bans});
  }
  o["steps"] = std::move(steps);
  return o;
}

json::object rates_json(const traffic_history* h) {
  constexpr auto window = std::chrono::seconds(10);
  const traffic_step r = h != nullptr ? h->recent(window) : traffic_step{};
  json::object o;
  o["window_s"] = r.seconds;
  o["requests_per_s"] = per_second(r.requests, r.seconds);
  o["errors_per_s"] = per_second(r.errors, r.seconds);
  o["bytes_up_per_s"] = per_second(r.bytes_up, r.seconds);
  o["bytes_down_per_s"] = per_second(r.bytes_down, r.seconds);
  return o;
}

}  // namespace

dashboard_query parse_dashboard_query(std::string_view query) {
  dashboard_query q;
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = part.find('=');
    const std::string_view key = part.substr(0, eq);
    const std::string value = eq == std::string_view::npos ? std::string() : form_decode(part.substr(eq + 1));
    if (key == "country") {
      q.country = proto::lower(value);
    } else if (key == "state") {
      q.state = value;
    } else if (key == "tag") {
      q.tag = value;
    } else if (key == "limit") {
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec == std::errc() && p == value.data() + value.size()) {
        q.limit = std::clamp<std::size_t>(n, 1, 100000);
      }
    }
  }
  return q;
}

bool dashboard_matches(const dashboard_query& q, const pool::exit& e, pool::exit_state state) {
  const auto& spec = e.spec();
  if (!q.country.empty() && q.country != (spec.country.empty() ? "-" : spec.country)) {
    return false;
  }
  if (!q.state.empty() && q.state != pool::state_name(state)) {
    return false;
  }
  if (q.tag.empty()) {
    return true;
  }
  const auto eq = q.tag.find('=');
  auto tag_value = [&spec](std::string_view key) -> std::string_view {
    if (key == "country") {
      return spec.country;
    }
    if (key == "city") {
      return spec.city;
    }
    if (key == "type") {
      return spec.type;
    }
    if (key == "id") {
      return spec.id;
    }
    for (const auto& [k, v] : spec.tags) {
      if (k == key) {
        return v;
      }
    }
    return {};
  };
  if (eq != std::string::npos) {
    const std::string_view key = std::string_view(q.tag).substr(0, eq);
    const std::string_view value = std::string_view(q.tag).substr(eq + 1);
    const auto v = tag_value(key);
    return !v.empty() && v == value;
  }
  auto has = [&q](std::string_view v) { return v.find(q.tag) != std::string_view::npos; };
  if (has(spec.id) || has(spec.country) || has(spec.city) || has(spec.type)) {
    return true;
  }
  return std::any_of(spec.tags.begin(), spec.tags.end(), [&](const auto& kv) { return has(kv.second); });
}

std::string render_dashboard_json(const dashboard_inputs& in, const dashboard_query& q) {
  const pool::snapshot& snap = *in.snap;
  json::object root;
  root["now_unix"] = seconds_of(in.wall_now);
  root["uptime_s"] = std::chrono::duration<double>(in.wall_now - in.started).count();
  json::object filter;
  filter["country"] = q.country;
  filter["state"] = q.state;
  filter["tag"] = q.tag;
  root["filter"] = std::move(filter);

  std::map<std::string, std::uint64_t> by_state{{"healthy", 0}, {"ejected", 0}, {"probing", 0}};
  std::map<std::string, std::uint64_t> by_country;
  std::map<int, std::uint64_t> by_tier;
  std::set<std::string> countries;
  std::set<std::string> tag_keys;
  std::map<std::string, std::uint64_t> ban_hosts;
  const pool::ban_index bans = in.bans != nullptr ? in.bans->bans_by_exit(in.now) : pool::ban_index{};
  json::array rows;
  std::uint64_t matching = 0;
  for (const auto& e : snap.exits()) {
    const auto& spec = e->spec();
    countries.insert(spec.country.empty() ? "-" : spec.country);
    for (const auto& kv : spec.tags) {
      tag_keys.insert(kv.first);
    }
    const auto state = e->state(in.now);
    if (!dashboard_matches(q, *e, state)) {
      continue;
    }
    ++matching;
    ++by_state[pool::state_name(state)];
    ++by_country[spec.country.empty() ? "-" : spec.country];
    ++by_tier[e->tier()];
    if (rows.size() < q.limit) {
      json::object row = exit_json(*e, in.now, &bans, in.bans);
      for (const auto& b : row["bans"].as_array()) {
        ++ban_hosts[std::string(b.as_object().at("host").as_string())];
      }
      rows.push_back(std::move(row));
    }
  }
  json::object pool_o;
  pool_o["exits"] = snap.size();
  pool_o["matching"] = matching;
  pool_o["listed"] = rows.size();
  json::object st;
  for (const auto& [k, v] : by_state) {
    st[k] = v;
  }
  pool_o["by_state"] = std::move(st);
  json::object co;
  for (const auto& [k, v] : by_country) {
    co[k] = v;
  }
  pool_o["by_country"] = std::move(co);
  json::object ti;
  for (const auto& [k, v] : by_tier) {
    ti[std::to_string(k)] = v;
  }
  pool_o["by_tier"] = std::move(ti);
  json::array cs;
  for (const auto& c : countries) {
    cs.emplace_back(c);
  }
  pool_o["countries"] = std::move(cs);
  json::array tk;
  for (const auto& k : tag_keys) {
    tk.emplace_back(k);
  }
  pool_o["tags"] = std::move(tk);
  root["pool"] = std::move(pool_o);
  root["exits"] = std::move(rows);

  static const metrics_totals no_traffic{};
  root["traffic"] = traffic_json(in.totals != nullptr ? *in.totals : no_traffic, in.bans, in.now);
  root["rates"] = rates_json(in.history);
  root["history"] = in.history != nullptr ? history_json(*in.history) : history_json(traffic_history(2));

  std::vector<std::pair<std::string, std::uint64_t>> top(ban_hosts.begin(), ban_hosts.end());
  std::stable_sort(top.begin(), top.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  json::array top_o;
  for (std::size_t i = 0; i < top.size() && i < 10; ++i) {
    json::object h;
    h["host"] = top[i].first;
    h["exits"] = top[i].second;
    top_o.push_back(std::move(h));
  }
  root["top_ban_hosts"] = std::move(top_o);

  json::array reloads;
  if (in.reloads != nullptr) {
    for (const auto& r : in.reloads->events()) {
      json::object o;
      o["at_unix"] = seconds_of(r.at);
      o["ok"] = r.ok;
      o["exits"] = r.exits;
      o["seconds"] = r.seconds;
      o["what"] = r.what;
      reloads.push_back(std::move(o));
    }
  }
  root["reloads"] = std::move(reloads);
  json::object fleet;
  fleet["shared"] = !in.state_backend.empty();
  fleet["backend"] = in.state_backend.empty() ? json::value(nullptr) : json::value(in.state_backend);
  fleet["backend_up"] = in.backend_up;
  fleet["gateways"] = in.fleet_gateways;
  root["fleet"] = std::move(fleet);
  std::string s = json::serialize(root);
  s += '\n';
  return s;
}

}  // namespace exitpool::admin
