#include "net/ares.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace exitpool::net::dns {

namespace {

status status_of(int code) {
  switch (code) {
    case ARES_SUCCESS:
      return status::ok;
    case ARES_ENOTFOUND:
      return status::not_found;
    case ARES_ENODATA:
      return status::no_address;
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_EFORMERR:
    case ARES_EBADRESP:
    case ARES_ENOTIMP:
      return status::server_failure;
    case ARES_ETIMEOUT:
      return status::timeout;
    case ARES_ECONNREFUSED:
      return status::unreachable;
    case ARES_EBADNAME:
    case ARES_ENONAME:
      return status::bad_name;
    default:
      return status::internal;
  }
}

answer answer_of(int code, const ares_addrinfo* res) {
  answer a;
  a.st = status_of(code);
  if (a.st != status::ok || res == nullptr) {
    return a;
  }
  int ttl = INT_MAX;
  for (const ares_addrinfo_node* n = res->nodes; n != nullptr; n = n->ai_next) {
    address addr;
    if (n->ai_family == AF_INET && n->ai_addr != nullptr) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(n->ai_addr);
      std::memcpy(addr.bytes.data(), &sin->sin_addr, 4);
    } else if (n->ai_family == AF_INET6 && n->ai_addr != nullptr) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(n->ai_addr);
      addr.v6 = true;
      std::memcpy(addr.bytes.data(), &sin6->sin6_addr, 16);
    } else {
      continue;
    }
    if (std::find(a.addresses.begin(), a.addresses.end(), addr) == a.addresses.end()) {
      a.addresses.push_back(addr);
    }
    ttl = std::min(ttl, n->ai_ttl);
  }
  for (const ares_addrinfo_cname* c = res->cnames; c != nullptr; c = c->next) {
    ttl = std::min(ttl, c->ttl);
  }
  if (a.addresses.empty()) {
    a.st = status::no_address;
    return a;
  }
  a.ttl = std::chrono::seconds(std::max(0, ttl));
  return a;
}

// One lookup's context, owned by c-ares until its callback.
struct call {
  const bool* closing;
  bool v6;
  ares_client::family_done done;
};

void on_addrinfo(void* arg, int code, int /*timeouts*/, ares_addrinfo* res) {
  std::unique_ptr<call> c(static_cast<call*>(arg));
  const answer a = answer_of(code, res);
  if (res != nullptr) {
    ares_freeaddrinfo(res);
  }
  if (code == ARES_EDESTRUCTION || *c->closing) {
    return;
  }
  c->done(c->v6, a);
}

// The /etc/hosts entry of `name` for one family; no_address when it has none.
answer hosts_entry(ares_channel ch, const std::string& name, bool v6) {
  answer a;
  a.st = status::no_address;
  hostent* he = nullptr;
  if (ares_gethostbyname_file(ch, name.c_str(), v6 ? AF_INET6 : AF_INET, &he) != ARES_SUCCESS || he == nullptr) {
    return a;
  }
  const int want = v6 ? AF_INET6 : AF_INET;
  const std::size_t len = v6 ? 16 : 4;
  if (he->h_addrtype == want && static_cast<std::size_t>(he->h_length) == len) {
    for (char** p = he->h_addr_list; p != nullptr && *p != nullptr; ++p) {
      address addr;
      addr.v6 = v6;
      std::memcpy(addr.bytes.data(), *p, len);
      a.addresses.push_back(addr);
    }
  }
  ares_free_hostent(he);
  if (!a.addresses.empty()) {
    a.st = status::ok;
  }
  return a;
}

void init_library() {
  static const int rc = ares_library_init(ARES_LIB_INIT_ALL);
  if (rc != ARES_SUCCESS) {
    throw std::runtime_error(fmt::format("c-ares: {}", ares_strerror(rc)));
  }
}

}  // namespace

ares_client::ares_client(const config& cfg, socket_watch watch) : watch_(std::move(watch)) {
  init_library();
  std::string error;
  const auto csv = server_csv(cfg.servers, error);
  if (!csv) {
    throw std::runtime_error("--dns-server: " + error);
  }
  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  opts.sock_state_cb = &ares_client::on_socket_state;
  opts.sock_state_cb_data = this;
  // DNS only: lookup() reads /etc/hosts itself, for both families at once.
  char lookups[] = "b";
  opts.lookups = lookups;
  // Two tries per server, the second with twice the time (c-ares doubles it): the whole
  // lookup fits the lookup timeout with one server.
  opts.tries = 2;
  opts.timeout = static_cast<int>(std::max<std::int64_t>(100, cfg.timeout.count() / 3));
  if (!csv->empty()) {
    // Given servers: no search domains from this machine's resolv.conf either.
    mask |= ARES_OPT_DOMAINS;
    opts.domains = nullptr;
    opts.ndomains = 0;
  }
  ares_channel ch = nullptr;
  if (const int rc = ares_init_options(&ch, &opts, mask); rc != ARES_SUCCESS) {
    throw std::runtime_error(fmt::format("c-ares: cannot start a resolver: {}", ares_strerror(rc)));
  }
  channel_ = ch;
  if (!csv->empty()) {
    if (const int rc = ares_set_servers_ports_csv(channel_, csv->c_str()); rc != ARES_SUCCESS) {
      ares_destroy(channel_);
      throw std::runtime_error(fmt::format("--dns-server {}: {}", *csv, ares_strerror(rc)));
    }
  }
}

ares_client::~ares_client() {
  closing_ = true;
  ares_destroy(channel_);  // closes its sockets (telling watch_) and drops the lookups
}

void ares_client::on_socket_state(void* self, int fd, int read, int write) {
  static_cast<ares_client*>(self)->watch_(fd, read != 0, write != 0);
}

void ares_client::lookup(const std::string& name, const family_done& done) {
  auto v4 = hosts_entry(channel_, name, false);
  auto v6 = hosts_entry(channel_, name, true);
  if (v4.st == status::ok || v6.st == status::ok) {
    done(false, std::move(v4));
    done(true, std::move(v6));
    return;
  }
  for (const bool six : {false, true}) {
    ares_addrinfo_hints hints{};
    hints.ai_family = six ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    // The caller orders the addresses; c-ares's RFC 6724 sort connects a UDP socket per address.
    hints.ai_flags = ARES_AI_NOSORT;
    auto* c = new call{&closing_, six, done};
    ares_getaddrinfo(channel_, name.c_str(), nullptr, &hints, &on_addrinfo, c);
  }
}

void ares_client::process(int readable_fd, int writable_fd) {
  ares_process_fd(channel_, readable_fd < 0 ? ARES_SOCKET_BAD : readable_fd,
                  writable_fd < 0 ? ARES_SOCKET_BAD : writable_fd);
}

std::optional<std::chrono::milliseconds> ares_client::next_timeout() const {
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
    return std::nullopt;
  }
  // Rounded up: waking a little early would only find nothing to do and wait again.
  return std::chrono::milliseconds(static_cast<std::int64_t>(tv.tv_sec) * 1000 + (tv.tv_usec + 999) / 1000);
}

}  // namespace exitpool::net::dns
