#pragma once
// Tunnel relay between a client and an upstream stream, both directions at once,
// until both sides have closed (half-close is forwarded) or either fails.
// Uses splice(2) through a pipe when both ends are plain TCP (no copy into user
// space), a buffered copy otherwise (TLS exits). Runs on the session's shard.

#include <cstdint>
#include <string>

#include "net/stream.hpp"

namespace exitpool::net {

// Last time bytes moved; the session's watchdog reads it for the idle timeout.
struct activity {
  clock::time_point last = clock::now();
  void touch() { last = clock::now(); }
};

struct relay_result {
  std::uint64_t bytes_up = 0;    // client → upstream
  std::uint64_t bytes_down = 0;  // upstream → client
  bool spliced = false;
  error_code error;              // first error (not EOF) in either direction
};

// `to_upstream` / `to_client`: bytes already read from one side (pipelined after a
// handshake) that must reach the other before anything else.
awaitable<relay_result> relay(stream& client, stream& upstream, std::string to_upstream, std::string to_client,
                              activity& act);

}  // namespace exitpool::net
