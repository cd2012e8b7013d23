#include "gateway/upstream_pool.hpp"

#include <fmt/format.h>
#include <sys/socket.h>

#include "pool/sticky.hpp"

namespace exitpool::gateway {

namespace {

// An idle keep-alive connection must have nothing to read: EOF means the server
// closed it, and unexpected bytes mean it is out of step. Either way, not reusable.
bool still_idle(net::stream& s) {
  char c;
  ssize_t n = ::recv(s.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::string upstream_pool::key(const pool::exit& ex, std::string_view authority, std::string_view session) {
  const auto& spec = ex.spec();
  const bool via_http_proxy = proto::is_http_proxy_scheme(spec.scheme);
  // Credentials enter as a hash: a reloaded exit with new credentials gets new connections.
  const auto creds =
      pool::hash64(spec.user + '\x1f' + spec.pass + '\x1f' + spec.host + ':' + std::to_string(spec.port));
  return fmt::format("{}\x1f{:016x}\x1f{}\x1f{}", ex.id(), creds, via_http_proxy ? std::string_view() : authority,
                     session);
}

std::optional<net::stream> upstream_pool::take(const std::string& key, net::clock::time_point now) {
  auto it = map_.find(key);
  if (it == map_.end()) {
    return std::nullopt;
  }
  auto& list = it->second;
  while (!list.empty()) {
    idle c = std::move(list.back());
    list.pop_back();
    --total_;
    // A connection used within the last second is taken as it is (a closed one is caught
    // by the replay on a fresh dial); an older one is checked first for a close or for
    // bytes the server sent while idle (a 408 before closing), which a replay cannot undo.
    const auto idle_for = now - c.since;
    if (idle_for < max_idle_ && (idle_for < std::chrono::seconds(1) || still_idle(c.s))) {
      return std::move(c.s);  // an emptied list stays: it keeps its capacity for the next put
    }
    c.s.close();
  }
  map_.erase(it);
  return std::nullopt;
}

void upstream_pool::put(const std::string& key, net::stream s, net::clock::time_point now) {
  auto& list = map_[key];
  if (total_ >= max_total_ || list.size() >= max_per_key_) {
    s.close();
    if (list.empty()) {
      map_.erase(key);
    }
    return;
  }
  list.push_back(idle{std::move(s), now});
  ++total_;
}

std::size_t upstream_pool::sweep(net::clock::time_point now) {
  for (auto it = map_.begin(); it != map_.end();) {
    auto& list = it->second;
    std::erase_if(list, [&](idle& c) {
      if (now - c.since >= max_idle_) {
        c.s.close();
        --total_;
        return true;
      }
      return false;
    });
    it = list.empty() ? map_.erase(it) : std::next(it);
  }
  return total_;
}

}  // namespace exitpool::gateway
