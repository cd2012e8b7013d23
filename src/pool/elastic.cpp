#include "pool/elastic.hpp"

#include <algorithm>

#include "pool/pool.hpp"
#include "pool/sticky.hpp"

namespace exitpool::pool {

namespace {

std::string virtual_id(const exit& line, std::uint64_t session) {
  std::string id;
  id.reserve(line.id().size() + 13);
  id.append(line.id());
  id.push_back('~');
  proto::session_token(session, id);
  return id;
}

std::shared_ptr<exit> make_with_id(exit& line, const virtual_request& r, const limits_config& limits, std::string id) {
  const std::uint64_t h = virtual_hash(line, r.session);
  const proto::exit_spec& ls = line.spec();
  const proto::provider_line& p = *ls.provider;
  const filter& f = *r.f;
  proto::exit_spec s;
  s.scheme = ls.scheme;
  s.host = ls.host;
  s.port = ls.port;
  s.tls_verify = ls.tls_verify;
  s.weight = ls.weight;
  s.type = ls.type;
  s.line = ls.line;
  s.country = f.country;
  s.city = f.city;
  if (!f.state.empty()) {
    s.tags.emplace_back("state", f.state);
  }
  if (!f.asn.empty()) {
    s.tags.emplace_back("asn", f.asn);
  }
  s.id = std::move(id);
  const proto::render_input in{.user = ls.user,
                               .pass = ls.pass,
                               .country = f.country,
                               .state = f.state,
                               .city = f.city,
                               .asn = f.asn,
                               .session = r.session,
                               .has_session = true,
                               .sesstime_minutes = r.sesstime_minutes};
  proto::render(p.user_tpl, in, s.user);
  proto::render(p.pass_tpl, in, s.pass);
  auto v = std::make_shared<exit>(std::move(s), line, h);
  v->apply_limits(limits);
  return v;
}

}  // namespace

std::shared_ptr<exit> make_virtual(exit& line, const virtual_request& r, const limits_config& limits) {
  return make_with_id(line, r, limits, virtual_id(line, r.session));
}

std::uint64_t virtual_hash(const exit& line, std::uint64_t session) {
  return mix64(line.id_hash(), session);
}

std::uint64_t sticky_session_number(std::uint64_t key_hash, std::uint64_t generation, const filter& f,
                                    std::uint64_t k) {
  std::uint64_t h = hash64(f.country, 1);
  for (const std::string* field : {&f.city, &f.state, &f.asn, &f.type}) {
    h = mix64(h, hash64(*field));
  }
  return mix64(mix64(key_hash, generation), mix64(h, k));
}

std::shared_ptr<exit> family::find(std::uint64_t id_hash, time_point now) const {
  return map_.with_stripe(id_hash, [&](const auto& m) -> std::shared_ptr<exit> {
    const auto it = m.find(id_hash);
    return it == m.end() || now >= it->second.expires ? nullptr : it->second.value;
  });
}

std::shared_ptr<exit> family::get(exit& line, const virtual_request& r, const limits_config& limits, time_point until,
                                  time_point now) {
  const std::uint64_t h = virtual_hash(line, r.session);
  // Another line's exit with the same 64-bit hash (or a line replaced by a reload) is not this one.
  auto same_exit = [&](const std::shared_ptr<exit>& e) { return e && e->parent() == &line && e->id_hash() == h; };
  auto known = map_.with_stripe(h, [&](auto& m) -> std::shared_ptr<exit> {
    const auto it = m.find(h);
    if (it == m.end() || !same_exit(it->second.value) || now >= it->second.expires) {
      return nullptr;
    }
    it->second.expires = std::max(it->second.expires, until);
    return it->second.value;
  });
  if (known) {
    return known;
  }
  auto v = make_with_id(line, r, limits, virtual_id(line, r.session));  // outside the lock: it allocates
  return map_.with_stripe(h, [&](auto& m) -> std::shared_ptr<exit> {
    auto [ent, inserted] = map_.upsert(m, h, now);
    if (inserted || now >= ent->expires || !ent->value) {
      ent->value = v;  // new, or an expired one replaced
    } else if (!same_exit(ent->value)) {
      return v;  // a collision with another live exit: this one is not kept
    }
    ent->expires = std::max(ent->expires, until);
    return ent->value;  // a racing shard may have made it first
  });
}

bool family::wants_ip(std::uint64_t id_hash, int max_tries) const {
  std::lock_guard lock(ips_mu_);
  const auto it = ips_.find(id_hash);
  return it == ips_.end() || (it->second.ip.empty() && it->second.tries < max_tries);
}

void family::learn(std::uint64_t id_hash, std::string ip) {
  std::lock_guard lock(ips_mu_);
  if (ips_.size() >= 2 * map_.capacity()) {
    std::erase_if(ips_, [this](const auto& kv) {
      return map_.with_stripe(kv.first, [&](const auto& m) { return m.find(kv.first) == m.end(); });
    });
  }
  auto& l = ips_[id_hash];
  ++l.tries;
  if (!ip.empty()) {
    l.ip = std::move(ip);
  }
}

std::string family::learned_ip(std::uint64_t id_hash) const {
  std::lock_guard lock(ips_mu_);
  const auto it = ips_.find(id_hash);
  return it == ips_.end() ? std::string() : it->second.ip;
}

std::vector<std::shared_ptr<exit>> family::live(time_point now) const {
  std::vector<std::shared_ptr<exit>> out;
  map_.for_each(now, [&](std::uint64_t, const auto& ent) { out.push_back(ent.value); });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->id() < b->id(); });
  return out;
}

}  // namespace exitpool::pool
