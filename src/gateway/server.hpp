#pragma once
// The gateway server: shared state, one listener per shard (SO_REUSEPORT), and
// the accept loops that start a session per connection on the accepting shard.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/config.hpp"
#include "pool/pool.hpp"
#include "pool/selector.hpp"
#include "pool/sticky.hpp"

namespace exitpool::gateway {

// Shared by every shard. Immutable after start, except the pool (atomic swap),
// the exits' atomic stats, and the session table (striped locks).
struct shared_state {
  shared_state(config c, std::shared_ptr<const pool::snapshot> snap,
               std::unordered_map<std::string, std::string> user_passwords);
  config cfg;
  pool::pool_holder pool;
  pool::session_table sessions;
  std::unordered_map<std::string, std::string> users;  // user → password; empty: no auth
  boost::asio::ssl::context tls_verified;
  boost::asio::ssl::context tls_insecure;
};

// What a session owns on its shard: the shared state and this shard's selector.
struct shard_state {
  shared_state& shared;
  pool::selector selector;
  int index;
};

// Loads a users file: `user:password` per line, `#` comments. Throws
// std::runtime_error("FILE:LINE: message") on a bad line.
std::unordered_map<std::string, std::string> load_users(const std::string& path);

// Parses "host:port", "[v6]:port". Throws std::invalid_argument.
boost::asio::ip::tcp::endpoint parse_listen(const std::string& text);

// Runs the gateway until SIGINT/SIGTERM. Throws on startup errors (bind, ...).
// `on_ready` is called once every listener is bound.
int run_server(config cfg, std::shared_ptr<const pool::snapshot> snap,
               std::unordered_map<std::string, std::string> users, const std::function<void(int threads)>& on_ready);

}  // namespace exitpool::gateway
