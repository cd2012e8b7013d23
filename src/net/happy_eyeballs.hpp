#pragma once
// Connecting to a target with several addresses, RFC 8305 ("happy eyeballs v2"): IPv6
// first, the families alternating, each attempt given `delay` (the Connection Attempt
// Delay, 250 ms by default) before the next one starts beside it, and the next one
// started at once when an attempt fails. The first connection wins; the others are
// closed. The resolver hands over A and AAAA answers together, so there is no
// Resolution Delay to wait for.
//
// Threading: runs on the calling shard's executor; the attempts are coroutines on it.

#include <chrono>
#include <optional>
#include <tuple>
#include <vector>

#include "net/stream.hpp"

namespace exitpool::net {

// Where a connection leaves from: a local address, bound with IP(V6)_FREEBIND when the
// host need not have it configured (an address picked inside an IPv6 prefix exit).
struct source_address {
  asio::ip::address address;
  bool freebind = false;
};

// Opens `sock` for `to`'s family and binds it to `source` (if any), leaving the source
// port to connect(). Errors from open, the socket options or bind.
error_code open_from(tcp::socket& sock, const tcp::endpoint& to, const std::optional<source_address>& source);

// RFC 8305 section 4: IPv6 first, then alternating families, each family's addresses in
// the order given. Pure.
std::vector<tcp::endpoint> happy_eyeballs_order(const std::vector<tcp::endpoint>& eps);

// Connects to one of `eps` (in the order given: see happy_eyeballs_order) from `source`.
// A single address is a plain connect. On failure: the last attempt's error
// (operation_aborted when the caller's cancellation stopped it).
awaitable<std::tuple<error_code, tcp::socket>> connect_racing(std::vector<tcp::endpoint> eps,
                                                              std::optional<source_address> source,
                                                              std::chrono::milliseconds delay);

}  // namespace exitpool::net
