#include "gateway/session_state.hpp"

#include "gateway/session.hpp"

namespace exitpool::gateway {

namespace asio = boost::asio;
using net::clock;

namespace {

// The sessions of the shard running on this thread (each shard is one thread), as an
// intrusive list: no allocation per connection.
thread_local session* live_sessions = nullptr;

}  // namespace

session::session(net::tcp::socket s, shard_state& sh)
    : shard(sh),
      open_connections(sh.shared.connections.fetch_add(1, std::memory_order_relaxed) + 1),
      client(std::move(s)),
      timer(client.socket().get_executor()) {
  // Counted for as long as the session lives, including a tunnel handed off to a relay
  // after the session's coroutine has returned (draining waits for these).
  sh.active_sessions.fetch_add(1, std::memory_order_relaxed);
  next_live = live_sessions;
  if (next_live != nullptr) {
    next_live->prev_live = this;
  }
  live_sessions = this;
}

session::~session() {
  (prev_live != nullptr ? prev_live->next_live : live_sessions) = next_live;
  if (next_live != nullptr) {
    next_live->prev_live = prev_live;
  }
  // Before active_sessions: once that reaches zero, draining may free the counters.
  slot.release();
  shard.shared.connections.fetch_sub(1, std::memory_order_relaxed);
  shard.active_sessions.fetch_sub(1, std::memory_order_relaxed);
}

void session::wait_until(clock::time_point t) {
  scheduled = t;
  timer.expires_at(t);  // cancels a pending wait: its handler sees operation_aborted
  timer.async_wait([self = shared_from_this()](net::error_code ec) {
    if (ec != asio::error::operation_aborted) {
      self->on_timer();
    }
  });
}

void session::finish() {
  done = true;
  timer.cancel();
  client.close();
  upstream.close();
}

void session::on_timer() {
  scheduled = clock::time_point::max();
  if (done || limit == clock::duration::zero()) {
    return;  // the next phase with a limit arms the timer again
  }
  const auto now = clock::now();
  const auto due = deadline();
  if (now < due) {
    wait_until(due);
    return;
  }
  if (upstream_only) {
    upstream_timed_out = true;
    upstream.close();
    limit = clock::duration::zero();
    return;
  }
  timed_out = true;
  client.close();
  upstream.close();
}

net::awaitable<bool> session::read_client() {
  std::size_t old = buf.size();
  buf.resize(old + 8192);
  auto [ec, n] = co_await client.read_some(asio::buffer(buf.data() + old, 8192));
  buf.resize(old + n);
  if (n > 0) {
    act.touch();
  }
  co_return !ec || n > 0;
}

net::awaitable<bool> session::write_client(std::string_view data) {
  auto [ec, n] = co_await client.write_all(asio::buffer(data.data(), data.size()));
  co_return !ec;
}

std::string error_reply(session& s, const http_error& e) {
  s.metrics().on_http_response(e.status);
  return render_error_response(e);
}

void close_idle_sessions() {
  for (auto* s = live_sessions; s != nullptr; s = s->next_live) {
    if (s->between_requests) {
      s->client.close();
    }
  }
}

}  // namespace exitpool::gateway
