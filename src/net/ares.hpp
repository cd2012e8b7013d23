#pragma once
// One c-ares channel (Debian's libc-ares), independent of any event loop: the owner
// watches the sockets c-ares tells it about (socket_watch) and calls process() when one
// is ready or when next_timeout() has passed. The gateway drives it with Asio
// (net/resolver.hpp), fetch with curl_multi_poll (fetch/transfer.hpp).
//
// Names are looked up in /etc/hosts first, then in DNS. A name /etc/hosts has for either
// family is answered from it alone, as the C library does (`localhost` with only an IPv4
// line asks no server for its AAAA). With config::servers
// the given servers are asked instead of /etc/resolv.conf's, and its search domains are
// not applied; without, /etc/resolv.conf is used as the C library would.
//
// Threading: one thread (one shard) owns a client; no call may come from another.

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "net/dns_cache.hpp"

struct ares_channeldata;

namespace exitpool::net::dns {

class ares_client {
 public:
  // c-ares wants to know when `fd` is readable / writable; both false: it is about to
  // close `fd` (stop watching it, do not close it).
  using socket_watch = std::function<void(int fd, bool read, bool write)>;
  using family_done = std::function<void(bool v6, answer)>;

  // Throws std::runtime_error when c-ares cannot start or refuses the servers.
  ares_client(const config& cfg, socket_watch watch);
  ~ares_client();  // lookups still pending are dropped without a call
  ares_client(const ares_client&) = delete;
  ares_client& operator=(const ares_client&) = delete;

  // Looks up both families of `name`: `done` is called once for A (v6 false) and once for
  // AAAA (v6 true), from within this call for /etc/hosts names, else from within process().
  // /etc/hosts is read here, synchronously: a small local file, read once per cache miss.
  void lookup(const std::string& name, const family_done& done);

  // A watched socket is ready (-1: none), or (both -1) the timeout has passed.
  void process(int readable_fd, int writable_fd);

  // How long until process() must be called for c-ares's own retries and timeouts;
  // nullopt while nothing is pending.
  std::optional<std::chrono::milliseconds> next_timeout() const;

 private:
  static void on_socket_state(void* self, int fd, int read, int write);
  ares_channeldata* channel_ = nullptr;
  socket_watch watch_;
  bool closing_ = false;
};

}  // namespace exitpool::net::dns
