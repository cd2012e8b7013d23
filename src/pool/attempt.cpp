#include "pool/attempt.hpp"

#include <utility>

namespace exitpool::pool {

attempt::attempt(attempt&& o) noexcept
    : st_(o.st_),
      observer_(o.observer_),
      snap_(std::move(o.snap_)),
      exit_(std::exchange(o.exit_, nullptr)),
      lease_(std::move(o.lease_)),
      host_own_(std::move(o.host_own_)),
      host_(o.owns_host_ ? std::string_view(host_own_) : o.host_),
      tier_(o.tier_),
      probe_(std::exchange(o.probe_, false)),
      completed_(o.completed_),
      owns_host_(o.owns_host_) {
  o.host_ = {};
}

attempt& attempt::operator=(attempt&& o) noexcept {
  if (this != &o) {
    release();
    st_ = o.st_;
    observer_ = o.observer_;
    snap_ = std::move(o.snap_);
    exit_ = std::exchange(o.exit_, nullptr);
    lease_ = std::move(o.lease_);
    owns_host_ = o.owns_host_;
    host_own_ = std::move(o.host_own_);
    host_ = owns_host_ ? std::string_view(host_own_) : o.host_;
    o.host_ = {};
    tier_ = o.tier_;
    probe_ = std::exchange(o.probe_, false);
    completed_ = o.completed_;
  }
  return *this;
}

void attempt::complete(const attempt_outcome& o, time_point now) {
  if (exit_ == nullptr || completed_) {
    return;
  }
  completed_ = true;
  exit& e = *exit_;
  // Health: only the exit's own failures count against it; traffic through it proves it
  // works; a failure of the target or the client before that says nothing (the probe
  // slot, if held, goes back for another request to prove the exit).
  if (o.who == fault::exit) {
    st_->report(e, {false, o.latency.count() < 0 ? std::chrono::microseconds(0) : o.latency, true}, now);
  } else if (o.connected) {
    st_->report(e, {true, o.latency, o.latency.count() >= 0}, now);
    if (!host_.empty()) {
      st_->record_tier(host_, tier_, now);
    }
  } else if (probe_) {
    e.release_probe();
  }
  probe_ = false;
  if (o.ban && !host_.empty()) {
    st_->ban(e, host_, now + *o.ban);
  }
  if (observer_ != nullptr) {
    observer_->on_attempt(e, o);
  }
}

void attempt::release() {
  if (exit_ != nullptr && probe_) {
    exit_->release_probe();
  }
  probe_ = false;
  lease_.release();
  exit_ = nullptr;
  host_ = {};  // possibly the caller's characters: not to be read after this
  snap_.reset();
}

driver::driver(policy p, std::uint64_t seed, state& st, std::chrono::milliseconds probe_timeout,
               attempt_observer* observer)
    : selector_(p, seed), st_(st), probe_timeout_(probe_timeout), observer_(observer) {}

begin_result driver::begin(std::shared_ptr<const snapshot> snap, const attempt_request& r, time_point now) {
  pick_request req;
  req.f = r.f;
  req.host = r.host;
  req.exclude = r.exclude;
  req.st = &st_;
  req.probe_timeout = probe_timeout_;
  const bool sticky = !r.sticky_key.empty();
  session_info session;
  if (sticky) {
    // A lifetime no run reaches (and no time_point arithmetic overflows with).
    constexpr std::chrono::seconds forever = std::chrono::hours(24 * 365 * 100);
    session = st_.session(r.sticky_key, r.sticky_forever ? forever : r.sticky_ttl, now);
    if (session.refused) {
      begin_result full;
      full.refused = failure::client_limit;
      full.retry_at = now + std::chrono::seconds(60);
      return full;
    }
    req.sticky_key = r.sticky_key;
    req.sticky_generation = session.generation;
    req.sticky_anchor = session.anchor;
    req.move_when_busy = r.move_when_busy;
  }
  auto pick = selector_.pick(*snap, req, now);
  begin_result out;
  out.matching = pick.matching;
  out.banned = pick.banned;
  out.limited = pick.limited;
  auto session_waits = [&](session_wait why) {
    out.wait = why;
    out.session_exit = pick.session_exit;
    if (observer_ != nullptr && !r.queued) {
      observer_->on_session_wait(why);
    }
  };
  switch (pick.error) {
    case pick_error::none:
      break;
    case pick_error::no_match:
      out.refused = failure::no_match;
      return out;
    case pick_error::exhausted:
      out.refused = failure::exhausted;
      return out;
    case pick_error::no_capacity:
      out.refused = failure::no_capacity;
      out.retry_at = pick.retry_at;
      if (pick.wait != session_wait::none) {
        session_waits(pick.wait);
      }
      return out;
  }
  const std::uint64_t chosen_hash = pick.chosen->id_hash();
  lease l = st_.try_acquire(*pick.chosen);
  if (!l) {
    // Another shard filled its concurrency cap since the pick: wait like for no capacity.
    if (pick.probe) {
      pick.chosen->release_probe();
    }
    out.refused = failure::no_capacity;
    out.retry_at = now + capacity_poll;
    out.limited = std::max<std::size_t>(out.limited, 1);
    if (sticky && chosen_hash == session.anchor) {
      pick.session_exit = pick.chosen;
      session_waits(session_wait::concurrency);
    }
    return out;
  }
  if (sticky && chosen_hash != session.anchor) {
    st_.anchor_session(r.sticky_key, session.generation, chosen_hash);
    if (session.anchor != 0 && observer_ != nullptr) {
      observer_->on_session_move(pick.moved);
    }
  }
  attempt& a = out.granted;
  a.st_ = &st_;
  a.observer_ = observer_;
  a.snap_ = std::move(snap);
  a.exit_ = pick.chosen;
  a.lease_ = std::move(l);
  a.owns_host_ = !r.host_outlives_attempt;
  if (a.owns_host_) {
    a.host_own_.assign(r.host);
    a.host_ = a.host_own_;
  } else {
    a.host_ = r.host;
  }
  a.tier_ = pick.tier;
  a.probe_ = pick.probe;
  return out;
}

attempt driver::check(std::shared_ptr<const snapshot> snap, exit& e, time_point now) {
  attempt a;
  const auto s = e.state(now);
  if (s == exit_state::ejected || (s == exit_state::probing && !e.try_claim_probe(now, probe_timeout_))) {
    return a;
  }
  a.st_ = &st_;
  a.observer_ = nullptr;  // active checks are not client requests: not counted as such
  a.snap_ = std::move(snap);
  a.exit_ = &e;
  a.tier_ = e.tier();
  a.probe_ = s == exit_state::probing;
  return a;
}

}  // namespace exitpool::pool
