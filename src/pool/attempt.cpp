#include "pool/attempt.hpp"

#include <algorithm>
#include <utility>

#include "pool/elastic.hpp"
#include "pool/sticky.hpp"

namespace exitpool::pool {

attempt::attempt(attempt&& o) noexcept
    : st_(o.st_),
      observer_(o.observer_),
      snap_(std::move(o.snap_)),
      exit_(std::exchange(o.exit_, nullptr)),
      lease_(std::move(o.lease_)),
      virtual_(std::move(o.virtual_)),
      line_(std::exchange(o.line_, nullptr)),
      line_lease_(std::move(o.line_lease_)),
      probe_on_(std::exchange(o.probe_on_, nullptr)),
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
    virtual_ = std::move(o.virtual_);
    line_ = std::exchange(o.line_, nullptr);
    line_lease_ = std::move(o.line_lease_);
    probe_on_ = std::exchange(o.probe_on_, nullptr);
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
  // A virtual exit's report is its provider line's too: the line's gateway is the one
  // both go through (its failures eject the whole line, as for any exit).
  auto report = [&](const outcome& out) {
    st_->report(e, out, now);
    if (line_ != nullptr) {
      st_->report(*line_, out, now);
    }
  };
  if (o.who == fault::exit) {
    report({false, o.latency.count() < 0 ? std::chrono::microseconds(0) : o.latency, true});
  } else if (o.connected) {
    report({true, o.latency, o.latency.count() >= 0});
    if (!host_.empty()) {
      st_->record_tier(host_, tier_, now);
    }
  } else if (probe_ && probe_on_ != nullptr) {
    probe_on_->release_probe();
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
  if (exit_ != nullptr && probe_ && probe_on_ != nullptr) {
    probe_on_->release_probe();
  }
  probe_ = false;
  probe_on_ = nullptr;
  lease_.release();
  line_lease_.release();
  line_ = nullptr;
  exit_ = nullptr;
  virtual_.reset();
  host_ = {};  // possibly the caller's characters: not to be read after this
  snap_.reset();
}

driver::driver(policy p, std::uint64_t seed, state& st, std::chrono::milliseconds probe_timeout,
               attempt_observer* observer)
    : selector_(p, seed),
      rotation_state_(mix64(seed, 0x70726f7669646572ULL)),
      st_(st),
      probe_timeout_(probe_timeout),
      observer_(observer) {}

std::shared_ptr<exit> driver::materialize(const snapshot& snap, exit& line, const attempt_request& r,
                                          const session_info& session, time_point now, begin_result& out) {
  virtual_request vr{.f = &r.f};
  if (r.sticky_key.empty()) {
    // Rotation: a fresh provider session, never seen before (splitmix64 over a per-shard
    // counter seeded apart from every other shard's).
    rotation_state_ += 0x9E3779B97F4A7C15ULL;
    vr.session = mix64(rotation_state_, 0);
    return make_virtual(line, vr, snap.limits());
  }
  constexpr std::chrono::seconds forever = std::chrono::hours(24 * 365 * 100);
  const auto ttl = r.sticky_forever ? forever : r.sticky_ttl;
  vr.sesstime_minutes = r.sticky_forever ? 0 : static_cast<int>(std::max<std::int64_t>(1, r.sticky_ttl.count() / 60));
  const std::uint64_t key_hash = hash64(r.sticky_key);
  time_point retry = time_point::max();
  // The session's k-th virtual exit on this line; an unusable one moves it to the next
  // (pool/elastic.hpp): the same choice on every shard and gateway.
  for (std::uint64_t k = 0; k < virtual_tries; ++k) {
    vr.session = sticky_session_number(key_hash, session.generation, r.f, k);
    auto v = line.virtuals()->get(line, vr, snap.limits(), now + ttl, now);
    if (std::find(r.exclude.begin(), r.exclude.end(), v.get()) != r.exclude.end()) {
      continue;
    }
    if (v->state(now) == exit_state::ejected) {
      retry = std::min(retry, v->down_until());
      continue;
    }
    if (!r.host.empty()) {
      if (const auto banned = st_.banned_until(*v, r.host, now)) {
        retry = std::min(retry, *banned);
        continue;
      }
    }
    if (!st_.take_exit_token(*v, now)) {
      retry = std::min(retry, st_.exit_token_at(*v, now));
      continue;
    }
    if (!r.host.empty() && st_.host_rate_limited() && !st_.take_host_token(*v, r.host, now)) {
      st_.refund_exit_token(*v);
      retry = std::min(retry, st_.host_token_at(*v, r.host, now));
      continue;
    }
    return v;
  }
  out.refused = failure::no_capacity;
  out.retry_at = retry == time_point::max() ? now + std::chrono::seconds(1) : retry;
  out.limited = std::max<std::size_t>(out.limited, 1);
  return nullptr;
}

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
  // A provider line runs the attempt on one of its virtual exits (pool/elastic.hpp); an
  // anchored pick may have chosen one already (pick.keep).
  std::shared_ptr<exit> keep = pick.keep.get() == pick.chosen ? std::move(pick.keep) : nullptr;
  exit* chosen = pick.chosen;
  exit* line = chosen->parent();
  exit* probe_on = pick.probe ? pick.chosen : nullptr;
  if (chosen->elastic()) {
    line = chosen;
    keep = materialize(*snap, *line, r, session, now, out);
    if (!keep) {
      if (probe_on != nullptr) {
        probe_on->release_probe();
      }
      st_.refund_exit_token(*line);  // the pick took it
      return out;
    }
    chosen = keep.get();
  }
  const std::uint64_t chosen_hash = chosen->id_hash();
  lease l = st_.try_acquire(*chosen);
  lease line_lease;
  if (l && line != nullptr) {
    line_lease = st_.try_acquire(*line);  // max_sessions= bounds the whole line
    if (!line_lease) {
      l.release();
    }
  }
  if (!l) {
    // Another shard filled its concurrency cap since the pick: wait like for no capacity.
    if (probe_on != nullptr) {
      probe_on->release_probe();
    }
    out.refused = failure::no_capacity;
    out.retry_at = now + capacity_poll;
    out.limited = std::max<std::size_t>(out.limited, 1);
    if (sticky && chosen_hash == session.anchor) {
      pick.session_exit = chosen;
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
  a.exit_ = chosen;
  a.lease_ = std::move(l);
  a.virtual_ = std::move(keep);
  a.line_ = line;
  a.line_lease_ = std::move(line_lease);
  a.probe_on_ = probe_on;
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
  a.probe_on_ = &e;
  return a;
}

}  // namespace exitpool::pool
