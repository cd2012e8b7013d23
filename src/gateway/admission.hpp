#pragma once
// The prelude every front runs before it asks the pool for an exit (CONNECT, forwarded
// HTTP, SOCKS5): authenticate the client (gateway/auth.hpp), then count the connection
// against its user's --max-connections-per-user. One decision, one refusal; each front
// only renders the refusal in its own protocol (an HTTP 407 / 429, a SOCKS5
// username/password failure).
//
// Pure but for the per-user counters, which are relaxed atomics shared by every shard
// (the table's keys are fixed at startup, so lookups need no lock). Any thread; a
// user_slot belongs to one connection, on the shard that serves it. No Asio.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "gateway/auth.hpp"
#include "gateway/errors.hpp"
#include "proto/user_params.hpp"

namespace exitpool::gateway {

// Open connections per user: one counter per user of the users file.
using user_counters = std::unordered_map<std::string, std::unique_ptr<std::atomic<int>>>;

// One connection's place in its user's count, given back when the slot is destroyed
// (with the connection). A connection is counted once, for the first user it
// authenticates as, even when it is refused: it stays open until its answer is sent.
class user_slot {
 public:
  user_slot() = default;
  ~user_slot();
  user_slot(const user_slot&) = delete;
  user_slot& operator=(const user_slot&) = delete;

  // Counts this connection against `user`'s limit `max` (0 or less: no limit). Does
  // nothing when it is already counted, or for a user without a counter. Returns why
  // the connection is refused (the user is at its limit), or "".
  std::string claim(const user_counters& counters, const std::string& user, int max);
  bool claimed() const { return count_ != nullptr; }
  // Gives the place back now (before the counters may go away); idempotent.
  void release();

 private:
  std::atomic<int>* count_ = nullptr;
};

// What the prelude needs from the gateway's state.
struct admission_rules {
  const user_table& users;
  const user_counters& counters;
  int max_per_user = 0;  // --max-connections-per-user; 0: none
};

struct admission {
  std::optional<proto::route_params> params;  // set when the client may go on
  http_error refusal;                         // otherwise auth_failed (407) or client_limit (429)
};

// Authenticates `creds` and claims the connection's slot for the user.
admission admit(const admission_rules& rules, const std::optional<credentials>& creds, user_slot& slot);

}  // namespace exitpool::gateway
