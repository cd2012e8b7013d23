#include "admin/reload_log.hpp"

namespace exitpool::admin {

void reload_log::add(reload_event e) {
  std::lock_guard lock(mu_);
  events_.push_front(std::move(e));
  while (events_.size() > keep_) {
    events_.pop_back();
  }
}

std::vector<reload_event> reload_log::events() const {
  std::lock_guard lock(mu_);
  return {events_.begin(), events_.end()};
}

}  // namespace exitpool::admin
