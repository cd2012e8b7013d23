#include "net/resolver.hpp"

#include <fmt/format.h>
#include <poll.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <unordered_map>

#include "admin/metrics.hpp"
#include "net/ares.hpp"

namespace exitpool::net {

namespace {

asio::ip::address to_asio(const dns::address& a) {
  if (a.v6) {
    asio::ip::address_v6::bytes_type b;
    std::copy(a.bytes.begin(), a.bytes.end(), b.begin());
    return asio::ip::address_v6(b);
  }
  return asio::ip::address_v4(asio::ip::address_v4::bytes_type{a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]});
}

// One coroutine waiting for a name: woken by cancelling its timer, which otherwise
// expires at the lookup deadline.
struct waiter {
  waiter(const asio::any_io_executor& ex, clock::time_point deadline) : timer(ex, deadline) {}
  asio::steady_timer timer;
  std::optional<dns::answer> result;
};

// A socket c-ares asked to watch. Shared with the wait handlers, which may run after
// c-ares closed the socket (closed is then true, and the descriptor released).
struct watch {
  watch(const asio::any_io_executor& ex, int fd) : fd(fd), d(ex, fd) {}
  int fd;
  asio::posix::stream_descriptor d;
  bool want_read = false, want_write = false;
  bool reading = false, writing = false;
  bool closed = false;
};

}  // namespace

struct resolver::impl {
  impl(asio::any_io_executor e, const dns::config& cfg, admin::shard_metrics* m)
      : ex(std::move(e)),
        timeout(cfg.timeout),
        metrics(m),
        table(cfg.cache_size, cfg.ttl),
        ares_timer(ex),
        ares(std::in_place, cfg, [this](int fd, bool r, bool w) { on_socket(fd, r, w); }) {}

  ~impl() {
    // The client goes first (members are destroyed in reverse): its sockets are released
    // from their descriptors through on_socket before the map goes.
    ares.reset();
    for (auto& [fd, w] : watches) {
      release(*w);
    }
  }

  void on_socket(int fd, bool read, bool write) {
    auto it = watches.find(fd);
    if (!read && !write) {
      if (it != watches.end()) {
        release(*it->second);
        watches.erase(it);
      }
      return;
    }
    if (it == watches.end()) {
      it = watches.emplace(fd, std::make_shared<watch>(ex, fd)).first;
    }
    auto w = it->second;
    w->want_read = read;
    w->want_write = write;
    arm(w);
  }

  static void release(watch& w) {
    w.closed = true;
    error_code ignored;
    w.d.cancel(ignored);
    (void)w.d.release();  // c-ares closes the socket itself
  }

  void arm(const std::shared_ptr<watch>& w) {
    if (w->want_read && !w->reading) {
      w->reading = true;
      wait(w, false);
    }
    if (w->want_write && !w->writing) {
      w->writing = true;
      wait(w, true);
    }
  }

  void wait(const std::shared_ptr<watch>& w, bool write) {
    auto ready = [this, w, write](const error_code& ec) {
      (write ? w->writing : w->reading) = false;
      if (ec || w->closed) {
        return;  // c-ares closed the socket (or the resolver is gone): `this` may be too
      }
      ares->process(write ? -1 : w->fd, write ? w->fd : -1);
      after_ares(w);
    };
    // Asio's epoll is edge-triggered: readiness that arrived while no wait was pending (a
    // TCP answer c-ares read only part of) would not be reported again. Look first.
    pollfd p{w->fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    if (::poll(&p, 1, 0) == 1 && p.revents != 0) {
      asio::post(ex, [ready] { ready(error_code{}); });
      return;
    }
    w->d.async_wait(write ? asio::posix::descriptor_base::wait_write : asio::posix::descriptor_base::wait_read,
                    std::move(ready));
  }

  // After c-ares ran: keep watching the socket that woke it, and re-arm the timer.
  void after_ares(const std::shared_ptr<watch>& w) {
    if (!w->closed) {
      arm(w);
    }
    arm_timer();
  }

  void arm_timer() {
    const auto next = ares->next_timeout();
    if (!next) {
      ares_timer.cancel();
      return;
    }
    ares_timer.expires_after(*next);
    ares_timer.async_wait([this](const error_code& ec) {
      if (ec) {
        return;  // re-armed, or the resolver is gone
      }
      ares->process(-1, -1);
      arm_timer();
    });
  }

  void start_query(const std::string& name) {
    ares->lookup(name, [this, name](bool v6, dns::answer a) { table.on_family(name, v6, std::move(a), clock::now()); });
    arm_timer();
  }

  asio::any_io_executor ex;
  std::chrono::milliseconds timeout;
  admin::shard_metrics* metrics;
  dns::lookup_table table;
  asio::steady_timer ares_timer;
  std::unordered_map<int, std::shared_ptr<watch>> watches;
  std::optional<dns::ares_client> ares;
};

resolver::resolver(asio::any_io_executor ex, const dns::config& cfg, admin::shard_metrics* metrics)
    : impl_(std::make_unique<impl>(std::move(ex), cfg, metrics)) {}

resolver::~resolver() = default;

std::size_t resolver::cached_names() const {
  return impl_->table.cached_names();
}

std::size_t resolver::names_in_flight() const {
  return impl_->table.names_in_flight();
}

awaitable<resolve_result> resolver::resolve(std::string host) {
  resolve_result out;
  std::string_view literal(host);
  if (literal.size() > 2 && literal.front() == '[' && literal.back() == ']') {
    literal = literal.substr(1, literal.size() - 2);
  }
  error_code aec;
  if (auto addr = asio::ip::make_address(literal, aec); !aec) {
    out.st = dns::status::ok;
    out.addresses.push_back(addr);
    out.cached = true;
    co_return out;
  }
  impl& m = *impl_;
  auto* metrics = m.metrics;
  const auto t0 = clock::now();
  auto finish = [&](const dns::answer& a, dns::source how) {
    out.st = a.st;
    out.cached = how == dns::source::cache;
    for (const auto& addr : a.addresses) {
      out.addresses.push_back(to_asio(addr));
    }
    if (metrics != nullptr) {
      metrics->on_dns_lookup(how, a.st, std::chrono::duration<double>(clock::now() - t0).count());
    }
  };
  const auto name = dns::normalize_name(host);
  if (!name) {
    finish(dns::answer{dns::status::bad_name, {}, {}}, dns::source::cache);
    co_return out;
  }
  auto w = std::make_shared<waiter>(m.ex, t0 + m.timeout);
  auto begun = m.table.begin(
      *name,
      [w](const dns::answer& a) {
        w->result = a;
        w->timer.cancel();
      },
      t0);
  if (begun.how == dns::source::cache) {
    finish(begun.cached, begun.how);
    co_return out;
  }
  if (begun.how == dns::source::query) {
    m.start_query(*name);  // may answer at once (/etc/hosts)
  }
  if (!w->result) {
    co_await w->timer.async_wait(nothrow_awaitable);
  }
  // Not answered: the deadline passed, or the caller cancelled the wait (a dial's own
  // deadline); either way a timeout, and the query goes on to fill the cache.
  finish(w->result ? *w->result : dns::answer{dns::status::timeout, {}, {}}, begun.how);
  co_return out;
}

std::string describe_failure(const std::string& host, dns::status st) {
  return fmt::format("cannot resolve {}: {}", host, dns::status_text(st));
}

}  // namespace exitpool::net
