#pragma once
// When the gateway gives the heap's free pages back to the system (malloc_trim) between the main
// thread's minute sweeps: soon after a burst of TLS handshakes has ended.
//
// Why: a TLS handshake allocates ~50 KiB of short-lived buffers (record buffers, the handshake
// message buffer, certificate parsing) between the connection's long-lived objects; once a burst of
// them is over, glibc keeps those pages resident. 1,000 idle tunnels through an https:// exit, opened
// 200 at a time, hold ~29 KiB of RSS each right after the burst and ~24 KiB once trimmed (their heap
// in use is ~20 KiB: bench/gateway/tls_idle_rss.sh). Trimming walks every free chunk of every arena
// under its lock, so it waits until the burst is over and runs at most once per `min_gap`.
//
// A pure decision with the time as input: the main thread asks it on every tick (a second or two) with
// the process's count of TLS handshakes so far (net::tls_stream::handshakes()). Main thread only.

#include <chrono>
#include <cstdint>

namespace exitpool::gateway {

class burst_trim {
 public:
  using clock = std::chrono::steady_clock;

  // A burst is at least `min_burst` handshakes since the last trim.
  burst_trim(std::uint64_t min_burst, clock::duration min_gap) : min_burst_(min_burst), min_gap_(min_gap) {}

  // True when the heap should be trimmed now: a burst happened since the last trim, no handshake
  // ended since the previous tick (the burst is over), and the last trim is `min_gap` ago.
  bool tick(std::uint64_t handshakes, clock::time_point now) {
    const bool quiet = handshakes == seen_;
    seen_ = handshakes;
    if (!quiet || handshakes - at_last_trim_ < min_burst_ || (trimmed_ && now - last_trim_ < min_gap_)) {
      return false;
    }
    trimmed(handshakes, now);
    return true;
  }

  // Records a trim made for another reason (the minute sweep), so that the next one waits for a new burst.
  void trimmed(std::uint64_t handshakes, clock::time_point now) {
    at_last_trim_ = handshakes;
    last_trim_ = now;
    trimmed_ = true;
  }

 private:
  std::uint64_t min_burst_;
  clock::duration min_gap_;
  std::uint64_t seen_ = 0;          // the count at the previous tick
  std::uint64_t at_last_trim_ = 0;  // the count when the heap was last trimmed
  clock::time_point last_trim_{};
  bool trimmed_ = false;
};

}  // namespace exitpool::gateway
