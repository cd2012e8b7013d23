#pragma once
// Tunnel relay between a client and an upstream stream, both directions at once,
// until both sides have closed (half-close is forwarded) or either fails. Runs on the
// session's shard. The client is always plain TCP: plain_relay for a plain exit
// (splice for bulk flows), tls_relay for a TLS exit. Both are driven by completion
// handlers, so an open tunnel holds no coroutine frame.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/splice.hpp"
#include "net/stream.hpp"

namespace exitpool::net {

struct relay_result {
  std::uint64_t bytes_up = 0;    // client → upstream
  std::uint64_t bytes_down = 0;  // upstream → client
  error_code error;              // first error (not EOF) in either direction
};

// The relay for plain TCP on both sides, driven by completion handlers rather than
// coroutines, so that an idle tunnel costs this object and two pending reads: no
// coroutine frames. Small messages are copied through a small buffer (one recv, one
// send, no pipe); a read that fills 64 KiB marks a bulk flow, which moves to splice(2).
//
// The owner keeps this object and both streams alive while the relay runs: every pending
// operation holds `owner`. `done` runs once, when both directions have finished (EOF is
// passed on as a half-close; an error in either direction shuts both down), and must
// close both streams: the last EOF is not passed on by a shutdown, the close sends it
// (one system call less per tunnel).
class plain_relay {
 public:
  plain_relay(stream& client, stream& upstream, activity& act);
  ~plain_relay();
  plain_relay(const plain_relay&) = delete;
  plain_relay& operator=(const plain_relay&) = delete;

  void start(std::string to_upstream, std::string to_client, std::shared_ptr<void> owner,
             std::function<void(const relay_result&)> done);

 private:
  struct direction {
    tcp::socket* from = nullptr;
    tcp::socket* to = nullptr;
    std::uint64_t bytes = 0;
    std::string spill;  // bytes read but not yet accepted by `to`
    splice_pipe pipe;   // opened when the flow turns out to be bulk
    std::size_t in_pipe = 0;
    bool bulk = false;
    bool finished = false;
    std::array<char, 512> small;  // where an idle direction's pending read lands
  };

  using owner_ptr = std::shared_ptr<void>;
  void read(direction& d, const owner_ptr& keep);
  void on_read(direction& d, error_code ec, std::size_t n, const owner_ptr& keep);
  void write_spill(direction& d, const owner_ptr& keep);
  void after_write(direction& d, const owner_ptr& keep);
  void splice_in(direction& d, const owner_ptr& keep);
  bool splice_out(direction& d, const owner_ptr& keep);
  void pass_fin(direction& d);
  void finish(direction& d, error_code ec, const owner_ptr& keep);

  activity& act_;
  direction up_;
  direction down_;
  error_code error_;
  std::function<void(const relay_result&)> done_;
};

// The relay for a plain client and an upstream over TLS (https:// exits), driven by
// completion handlers like plain_relay, so that an idle tunnel costs this object, the SSL
// connection and two readiness waits: no buffers and no coroutine frames. Bytes pass through
// the thread's scratch buffer within one handler (client reads of one TLS record, 16 KiB; up
// to four records from the exit per send); what a slow side has not taken yet waits in
// `spill` until it drains. The client's EOF is passed on
// as close_notify (TLS has no half-close), the exit's close_notify or TCP EOF as a FIN.
//
// Same contract as plain_relay: the owner keeps this object and both streams alive while it
// runs; `done` runs once, when both directions have finished.
class tls_relay {
 public:
  tls_relay(stream& client, stream& upstream, activity& act);
  ~tls_relay();
  tls_relay(const tls_relay&) = delete;
  tls_relay& operator=(const tls_relay&) = delete;

  void start(std::string to_upstream, std::string to_client, std::shared_ptr<void> owner,
             std::function<void(const relay_result&)> done);

 private:
  struct direction {
    std::uint64_t bytes = 0;
    std::string spill;  // bytes read but not yet accepted by the other side
    bool finished = false;
  };

  using owner_ptr = std::shared_ptr<void>;
  void read_client(const owner_ptr& keep);
  void on_client_readable(const owner_ptr& keep);
  void write_upstream(const char* data, std::size_t len, const owner_ptr& keep);
  void close_upstream(const owner_ptr& keep);
  void read_upstream(const owner_ptr& keep);
  void upstream_stopped(const tls_stream::step& s, const owner_ptr& keep);
  bool send_client(const char* data, std::size_t len, error_code end, const owner_ptr& keep);
  void write_client_spill(const owner_ptr& keep);
  void finish(direction& d, error_code ec, const owner_ptr& keep);

  tcp::socket& client_;
  tls_stream& tls_;
  activity& act_;
  direction up_;         // client → exit
  direction down_;       // exit → client
  error_code down_end_;  // how the exit ended, passed on once down_.spill has drained
  error_code error_;
  std::function<void(const relay_result&)> done_;
};

}  // namespace exitpool::net
