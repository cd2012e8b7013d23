#include "gateway/admission.hpp"

#include <fmt/format.h>

namespace exitpool::gateway {

user_slot::~user_slot() {
  release();
}

void user_slot::release() {
  if (count_ != nullptr) {
    count_->fetch_sub(1, std::memory_order_relaxed);
    count_ = nullptr;
  }
}

std::string user_slot::claim(const user_counters& counters, const std::string& user, int max) {
  if (count_ != nullptr || max <= 0) {
    return {};
  }
  auto it = counters.find(user);
  if (it == counters.end()) {
    return {};
  }
  count_ = it->second.get();
  if (count_->fetch_add(1, std::memory_order_relaxed) >= max) {
    return fmt::format("too many connections for user {} (limit {})", user, max);
  }
  return {};
}

bool credentials_required(const admission_rules& rules) {
  return !rules.allowlisted && !rules.users.empty();
}

bool refused_by_address(const admission_rules& rules) {
  return rules.allowlist && !rules.allowlisted && rules.users.empty();
}

admission admit(const admission_rules& rules, const std::optional<credentials>& creds, user_slot& slot) {
  admission a;
  if (refused_by_address(rules)) {
    a.refusal = make_error(pool::failure::auth_failed, "client address not allowed (--allow-client)");
    return a;
  }
  // An allowlisted client without credentials comes in as no one in particular (no
  // user slot); credentials it does send are checked as anyone's.
  auth_result auth;
  if (rules.allowlisted && !creds) {
    auth.params.emplace();
  } else {
    auth = authenticate(rules.users, creds);
  }
  if (auth.params && rules.port_options != nullptr) {
    std::string user = std::move(auth.params->user);
    std::string password = std::move(auth.params->password);
    auth.params = *rules.port_options;
    auth.params->user = std::move(user);  // sessions stay apart per user, limits per user
    auth.params->password = std::move(password);
  }
  if (!auth.params) {
    a.refusal = make_error(pool::failure::auth_failed, std::move(auth.error));
    return a;
  }
  if (auto busy = slot.claim(rules.counters, auth.params->user, rules.max_per_user); !busy.empty()) {
    a.refusal = make_error(pool::failure::client_limit, std::move(busy));
    return a;
  }
  a.params = std::move(auth.params);
  return a;
}

}  // namespace exitpool::gateway
