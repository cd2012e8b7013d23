#pragma once
// Gateway settings, from the command line or a TOML config file (same names).

#include <chrono>
#include <string>

#include "pool/pool.hpp"
#include "pool/selector.hpp"

namespace exitpool::gateway {

struct config {
  std::string listen = "127.0.0.1:8080";
  int threads = 0;  // 0: one per hardware thread
  pool::policy policy = pool::policy::round_robin;
  std::string pool_file;   // empty: the embedded default pool (direct://)
  std::string users_file;  // empty: no authentication
  int retries = 2;         // further exits tried after a failed dial
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds dial_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(300)};
  int session_minutes = 10;  // default sticky lifetime
  bool allow_open = false;   // allow a non-loopback listener without --users
  std::string ca_file;       // extra CA bundle for verifying https:// exits
  pool::health_config health;
};

}  // namespace exitpool::gateway
