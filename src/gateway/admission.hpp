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

// What the prelude needs from the gateway's state and the connection.
struct admission_rules {
  const user_table& users;
  const user_counters& counters;
  int max_per_user = 0;  // --max-connections-per-user; 0: none
  // --allow-client: an allowlist is configured / the client's address is on it. An
  // allowlisted client needs no credentials; with an allowlist and no users, a client
  // off the list is refused.
  bool allowlist = false;
  bool allowlisted = false;
  // A --port-map listener's options for this connection (its port's sticky session):
  // they replace the options of the credentials. Null on the main listener.
  const proto::route_params* port_options = nullptr;
};

// Whether a client must present credentials (SOCKS5: no-authentication not offered).
bool credentials_required(const admission_rules& rules);
// Whether a client cannot get in whatever it sends (off the allowlist, no users).
bool refused_by_address(const admission_rules& rules);

struct admission {
  std::optional<proto::route_params> params;  // set when the client may go on
  http_error refusal;                         // otherwise auth_failed (407) or client_limit (429)
};

// Authenticates `creds` (none needed from an allowlisted client) and claims the
// connection's slot for the user.
admission admit(const admission_rules& rules, const std::optional<credentials>& creds, user_slot& slot);

}  // namespace exitpool::gateway
