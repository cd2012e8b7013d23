#pragma once
// One inbound client connection: sniffs the first byte, speaks SOCKS5 or HTTP
// proxy (absolute-form and CONNECT), picks exits, dials with retries, relays.
// Runs entirely on the shard that accepted the socket.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/server.hpp"

namespace exitpool::gateway {

// `port_options`: the options of the --port-map port the socket arrived on (null on the
// main listener); must outlive the session.
boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket, shard_state& shard,
                                         const proto::route_params* port_options = nullptr);

// Closes this shard's client connections that are idle between two requests (kept
// alive, nothing in flight). Call on the shard's own thread, when draining.
void close_idle_sessions();

}  // namespace exitpool::gateway
