#pragma once
// One inbound client connection: sniffs the first byte, speaks SOCKS5 or HTTP
// proxy (absolute-form and CONNECT), picks exits, dials with retries, relays.
// Runs entirely on the shard that accepted the socket.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/server.hpp"

namespace exitpool::gateway {

boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket, shard_state& shard);

// Closes this shard's client connections that are idle between two requests (kept
// alive, nothing in flight). Call on the shard's own thread, when draining.
void close_idle_sessions();

}  // namespace exitpool::gateway
