#include "net/dns_cache.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace exitpool::net::dns {

std::string_view status_name(status s) {
  switch (s) {
    case status::ok:
      return "ok";
    case status::not_found:
      return "not_found";
    case status::no_address:
      return "no_address";
    case status::server_failure:
      return "server_failure";
    case status::timeout:
      return "timeout";
    case status::unreachable:
      return "unreachable";
    case status::bad_name:
      return "bad_name";
    case status::internal:
      return "internal";
  }
  return "internal";
}

std::string_view status_text(status s) {
  switch (s) {
    case status::ok:
      return "resolved";
    case status::not_found:
      return "no such name (NXDOMAIN)";
    case status::no_address:
      return "the name has no IPv4 or IPv6 address (NODATA)";
    case status::server_failure:
      return "the DNS server failed (SERVFAIL or REFUSED)";
    case status::timeout:
      return "the DNS lookup timed out";
    case status::unreachable:
      return "no DNS server gave an answer (SERVFAIL, REFUSED, or none listening)";
    case status::bad_name:
      return "not a valid host name";
    case status::internal:
      return "the DNS lookup failed";
  }
  return "the DNS lookup failed";
}

namespace {

// Which failure of two says most about the name: an NXDOMAIN is the name's own answer
// (for every type); a NODATA for one family says the least.
int failure_rank(status s) {
  switch (s) {
    case status::not_found:
      return 0;
    case status::bad_name:
      return 1;
    case status::timeout:
      return 2;
    case status::server_failure:
      return 3;
    case status::unreachable:
      return 4;
    case status::internal:
      return 5;
    case status::no_address:
      return 6;
    case status::ok:
      return 7;
  }
  return 5;
}

}  // namespace

answer merge(const answer& v4, const answer& v6) {
  const bool has4 = v4.st == status::ok && !v4.addresses.empty();
  const bool has6 = v6.st == status::ok && !v6.addresses.empty();
  answer out;
  if (has4 || has6) {
    out.st = status::ok;
    out.addresses.reserve(v4.addresses.size() + v6.addresses.size());
    if (has4) {
      out.addresses = v4.addresses;
    }
    if (has6) {
      out.addresses.insert(out.addresses.end(), v6.addresses.begin(), v6.addresses.end());
    }
    out.ttl = has4 && has6 ? std::min(v4.ttl, v6.ttl) : has4 ? v4.ttl : v6.ttl;
    return out;
  }
  // Neither has an address; an "ok" without one counts as NODATA.
  auto as_failure = [](status s) { return s == status::ok ? status::no_address : s; };
  const status a = as_failure(v4.st);
  const status b = as_failure(v6.st);
  out.st = failure_rank(a) <= failure_rank(b) ? a : b;
  return out;
}

clock::duration ttl_policy::lifetime(const answer& a) const {
  switch (a.st) {
    case status::ok:
      return std::clamp(a.ttl, min_ttl, std::max(min_ttl, max_ttl));
    case status::not_found:
    case status::no_address:
    case status::server_failure:
    case status::unreachable:
      return std::min(negative_ttl, max_ttl);
    default:
      return clock::duration::zero();
  }
}

namespace {

bool is_port(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && v >= 1 && v <= 65535;
}

bool is_ip(const std::string& s, bool v6) {
  unsigned char buf[16];
  return inet_pton(v6 ? AF_INET6 : AF_INET, s.c_str(), buf) == 1;
}

// One "ADDR[:PORT]" entry as c-ares writes it, or "" when it is not one.
std::string server_entry(std::string_view e) {
  if (e.empty()) {
    return {};
  }
  if (e.front() == '[') {
    const auto close = e.find(']');
    if (close == std::string_view::npos) {
      return {};
    }
    const std::string addr(e.substr(1, close - 1));
    const auto rest = e.substr(close + 1);
    if (!is_ip(addr, true) || (!rest.empty() && (rest.front() != ':' || !is_port(rest.substr(1))))) {
      return {};
    }
    return fmt::format("[{}]{}", addr, rest);
  }
  if (std::count(e.begin(), e.end(), ':') > 1) {  // a bare IPv6 address
    const std::string addr(e);
    return is_ip(addr, true) ? fmt::format("[{}]", addr) : std::string();
  }
  const auto colon = e.find(':');
  const std::string addr(e.substr(0, colon));
  if (!is_ip(addr, false) || (colon != std::string_view::npos && !is_port(e.substr(colon + 1)))) {
    return {};
  }
  return std::string(e);
}

}  // namespace

std::optional<std::string> server_csv(const std::vector<std::string>& servers, std::string& error) {
  std::string csv;
  for (const auto& item : servers) {
    std::string_view rest(item);
    while (true) {
      const auto comma = rest.find(',');
      const auto part = rest.substr(0, comma);
      const std::string entry = server_entry(part);
      if (entry.empty()) {
        error = fmt::format("'{}' is not ADDR, ADDR:PORT or [V6ADDR]:PORT", part);
        return std::nullopt;
      }
      if (!csv.empty()) {
        csv += ',';
      }
      csv += entry;
      if (comma == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(comma + 1);
    }
  }
  return csv;
}

std::optional<std::string> normalize_name(std::string_view host) {
  if (!host.empty() && host.back() == '.') {
    host.remove_suffix(1);
  }
  if (host.empty() || host.size() > 253) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(host.size());
  std::size_t label = 0;
  for (const char c : host) {
    if (c == '.') {
      if (label == 0) {
        return std::nullopt;
      }
      label = 0;
      out += c;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) {
      return std::nullopt;
    }
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (label == 0) {
    return std::nullopt;
  }
  return out;
}

cache::cache(std::size_t capacity, ttl_policy policy)
    : capacity_(std::max<std::size_t>(1, capacity)), policy_(policy) {}

const answer* cache::find(std::string_view name, time_point now) {
  const auto it = index_.find(name);
  if (it == index_.end()) {
    return nullptr;
  }
  const auto pos = it->second;
  if (now >= pos->expires) {
    lru_.erase(pos);
    index_.erase(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, pos);
  return &pos->a;
}

void cache::store(std::string_view name, const answer& a, time_point now) {
  const auto life = policy_.lifetime(a);
  auto it = index_.find(name);
  if (life <= clock::duration::zero()) {
    if (it != index_.end()) {
      lru_.erase(it->second);
      index_.erase(it);
    }
    return;
  }
  if (it != index_.end()) {
    it->second->a = a;
    it->second->expires = now + life;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(entry{std::string(name), a, now + life});
  index_.emplace(lru_.front().name, lru_.begin());
  while (index_.size() > capacity_) {
    index_.erase(lru_.back().name);
    lru_.pop_back();
  }
}

std::string_view source_name(source s) {
  switch (s) {
    case source::cache:
      return "cache";
    case source::coalesced:
      return "coalesced";
    case source::query:
      return "query";
  }
  return "query";
}

lookup_table::begun lookup_table::begin(const std::string& name, waiter w, time_point now) {
  begun out;
  if (const answer* hit = cache_.find(name, now)) {
    out.how = source::cache;
    out.cached = *hit;
    return out;
  }
  auto [it, fresh] = pending_.try_emplace(name);
  it->second.waiters.push_back(std::move(w));
  out.how = fresh ? source::query : source::coalesced;
  return out;
}

std::size_t lookup_table::on_family(const std::string& name, bool v6, answer a, time_point now) {
  const auto it = pending_.find(name);
  if (it == pending_.end()) {
    return 0;  // not asked for (or already answered): nothing waits
  }
  (v6 ? it->second.v6 : it->second.v4) = std::move(a);
  if (!it->second.v4 || !it->second.v6) {
    return 0;
  }
  const answer merged = merge(*it->second.v4, *it->second.v6);
  // Out of the table before anyone is woken: a waiter may begin() the same name again.
  std::vector<waiter> waiters = std::move(it->second.waiters);
  pending_.erase(it);
  cache_.store(name, merged, now);
  for (auto& w : waiters) {
    w(merged);
  }
  return waiters.size();
}

}  // namespace exitpool::net::dns
