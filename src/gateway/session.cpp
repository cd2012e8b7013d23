// One client connection, as flow: accept → sniff → authenticate → route → attempt →
// relay (CONNECT, SOCKS5) or forward (absolute-form HTTP). The decisions live beside
// it, pure and tested: gateway/admission (the prelude every front runs), auth,
// http_request (targets, keep-alive, retries), head_rewrite, errors; the I/O steps in
// gateway/connect (the attempt loop), forward (one round with one exit), session_state
// (the connection and its watchdog).
//
// Read from the bottom up: run_session → serve (sniffs the first byte) → serve_http
// (CONNECT: handle_connect; absolute-form: handle_forward) or serve_socks5; both
// tunnels end in relay_tunnel. Everything runs on the shard that accepted the socket.
#include "gateway/session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio.hpp>

#include "gateway/admission.hpp"
#include "gateway/auth.hpp"
#include "gateway/connect.hpp"
#include "gateway/errors.hpp"
#include "gateway/forward.hpp"
#include "gateway/head_rewrite.hpp"
#include "gateway/http_request.hpp"
#include "gateway/session_state.hpp"
#include "net/relay.hpp"
#include "proto/http_head.hpp"
#include "proto/socks5.hpp"
#include "proto/text.hpp"

namespace exitpool::gateway {

namespace {

namespace socks5 = proto::socks5;
using net::awaitable;
using net::clock;
using net::error_code;
using net::tcp;

admission_rules rules_of(const session& s) {
  const auto& g = s.shard.shared;
  admission_rules r{g.users, g.user_connections, g.cfg.max_connections_per_user};
  r.allowlist = !g.allow_clients.empty();
  r.allowlisted = s.allowlisted;
  r.port_options = s.port_options;
  return r;
}

// The prelude of every front: who the client is, and whether its user has room for
// another connection. The front renders a refusal in its own protocol.
admission admit(session& s, const std::optional<credentials>& creds) {
  return gateway::admit(rules_of(s), creds, s.slot);
}

// ---- tunnels: CONNECT and SOCKS5 ----

awaitable<void> relay_tunnel(std::shared_ptr<session> s, connect_outcome c) {
  s->upstream = std::move(c.dial.upstream);
  s->arm(s->cfg().idle_timeout);
  std::string pending = std::move(s->buf);
  s->metrics().on_tunnel_open();
  // Handed off: the relay's handlers keep the session; its coroutine frames (this one and
  // its callers') are freed while the tunnel stays open. The client is always plain TCP.
  s->tunnel_attempt = std::move(c.attempt);
  session* raw = s.get();
  auto done = [raw](const net::relay_result& r) {
    raw->metrics().on_tunnel_close();
    raw->metrics().on_bytes(r.bytes_up, r.bytes_down);
    spdlog::debug("tunnel closed: {} bytes up, {} down{}", r.bytes_up, r.bytes_down,
                  r.error ? ", " + r.error.message() : std::string());
    raw->finish();
    raw->tunnel_attempt.release();
  };
  if (s->upstream.is_plain()) {
    s->relay = std::make_unique<net::plain_relay>(s->client, s->upstream, s->act);
    s->relay->start(std::move(pending), std::move(c.dial.leftover), s, std::move(done));
  } else {
    s->tls_relay = std::make_unique<net::tls_relay>(s->client, s->upstream, s->act);
    s->tls_relay->start(std::move(pending), std::move(c.dial.leftover), s, std::move(done));
  }
  co_return;
}

awaitable<void> handle_connect(std::shared_ptr<session> s, proto::request_head head) {
  request_record record(*s);
  auto admitted = admit(*s, basic_credentials(head));
  auto target = admitted.params ? connect_target(head) : connect_target_result{};
  if (const http_error& refusal = admitted.refusal ? admitted.refusal : target.refusal; refusal) {
    const std::string reply = error_reply(*s, refusal);
    co_await s->write_client(reply);
    co_return;
  }
  s->arm(clock::duration::zero());
  std::vector<const pool::exit*> tried;
  auto c = co_await connect_via_pool(s->shard, *admitted.params, target.where->host, target.where->port,
                                     net::dial_mode::tunnel, tried);
  record.outcome = admin::outcome_of(c.error.kind);
  if (c.error) {
    const std::string reply = error_reply(*s, c.error);
    co_await s->write_client(reply);
    co_return;
  }
  s->metrics().on_http_response(200);
  std::string ok =
      "HTTP/1.1 200 Connection established\r\nX-Exitpool-Exit: " + proto::printable(c.attempt.chosen().id()) +
      "\r\n\r\n";
  if (!co_await s->write_client(ok)) {
    co_return;
  }
  co_await relay_tunnel(s, std::move(c));
}

// ---- forwarding absolute-form requests ----

// Returns true when the client connection may carry another request.
awaitable<bool> handle_forward(std::shared_ptr<session> s, proto::request_head head) {
  const auto& cfg = s->cfg();
  request_record record(*s);
  auto admitted = admit(*s, basic_credentials(head));
  auto planned = admitted.params ? plan_forward(head) : forward_plan_result{};
  if (const http_error& refusal = admitted.refusal ? admitted.refusal : planned.refusal; refusal) {
    const std::string reply = error_reply(*s, refusal);
    co_await s->write_client(reply);
    co_return false;
  }
  const forward_plan& plan = *planned.plan;
  if (plan.answer_here) {
    // Max-Forwards: 0 on TRACE / OPTIONS: the gateway is the last hop. A body (rare
    // here) is not read: the connection ends after the answer.
    record.outcome = admin::request_outcome::ok;
    const bool keep = plan.keep_client && plan.body.kind == proto::body_kind::none &&
                      !s->shard.shared.draining.load(std::memory_order_relaxed);
    const std::string reply = own_answer(head, keep);
    s->metrics().on_http_response(200);
    co_return co_await s->write_client(reply) && keep;
  }
  if (plan.answer_continue && !co_await s->write_client("HTTP/1.1 100 Continue\r\n\r\n")) {
    co_return false;
  }
  if (plan.body.kind == proto::body_kind::chunked) {
    // The first chunk-size line must be there and valid before any exit is dialled and
    // any of the request leaves: a malformed body is refused with nothing forwarded.
    // (Later chunks stream: a fault there ends both connections, see the README.)
    for (;;) {
      auto start = proto::check_chunked_start(s->buf);
      if (start.status == proto::parse_status::complete) {
        break;
      }
      if (start.status == proto::parse_status::error) {
        record.outcome = admin::request_outcome::client_error;
        const std::string reply = error_reply(*s, make_error(pool::failure::bad_request, std::move(start.error)));
        co_await s->write_client(reply);
        co_return false;
      }
      s->arm_deadline(cfg.handshake_timeout);
      if (!co_await s->read_client()) {
        co_return false;
      }
    }
  }
  // Upstream keep-alive only for replayable requests (sent again on a fresh connection
  // when an idle one turns out closed).
  bool allow_reuse = plan.replayable;
  std::vector<const pool::exit*> tried;
  // A ban answer kept while another exit is tried: passed through if none can serve.
  std::optional<exit_answer> held;
  for (int round = 0;; ++round) {
    s->arm(clock::duration::zero());
    auto c = co_await connect_via_pool(s->shard, *admitted.params, plan.target.where.host, plan.target.where.port,
                                       net::dial_mode::forward, tried,
                                       {.keep_alive = plan.replayable, .allow_reuse = allow_reuse, .queue = !held});
    if (c.error) {
      if (held) {
        co_return co_await forward_answer(s, std::move(*held), plan.keep_client, record);
      }
      record.outcome = admin::outcome_of(c.error.kind);
      const std::string reply = error_reply(*s, c.error);
      co_await s->write_client(reply);
      co_return false;
    }
    if (held) {
      held->upstream.close();
      held.reset();
    }
    auto r = co_await forward_round(s, head, plan, c);
    if (r.what == round_result::end::replay) {
      allow_reuse = false;
      --round;
      continue;
    }
    if (r.what == round_result::end::failed) {
      const std::string reply = error_reply(*s, r.error);
      co_await s->write_client(reply);
      co_return false;
    }
    allow_reuse = plan.replayable;
    if (r.what == round_result::end::no_answer) {
      if (retry_elsewhere(plan, exit_problem::no_answer, round, cfg.retries, cfg.ban_retries)) {
        tried.push_back(&c.attempt.chosen());
        continue;
      }
      record.outcome = admin::outcome_of(r.error.kind);
      const std::string reply = error_reply(*s, r.error);
      co_await s->write_client(reply);
      co_return false;
    }
    if (r.ban && retry_elsewhere(plan, exit_problem::banned, round, cfg.retries, cfg.ban_retries)) {
      tried.push_back(&c.attempt.chosen());
      r.answer.reuse_key.clear();
      held = std::move(r.answer);
      continue;
    }
    co_return co_await forward_answer(s, std::move(r.answer), plan.keep_client, record);
  }
}

// ---- HTTP proxy front ----

awaitable<void> serve_http(std::shared_ptr<session> s) {
  for (bool first = true;; first = false) {
    if (first) {
      s->arm_deadline(s->cfg().handshake_timeout);
    } else {
      s->arm(s->cfg().idle_timeout);
    }
    proto::request_parse_result parsed;
    for (;;) {
      parsed = proto::parse_request_head(s->buf);
      if (parsed.status != proto::parse_status::incomplete) {
        break;
      }
      if (!first && s->buf.empty()) {
        // Between requests: wait for the next one under the idle limit, then the head's.
        s->between_requests = true;
        const bool more = co_await s->read_client();
        s->between_requests = false;
        if (!more) {
          co_return;
        }
        s->arm_deadline(s->cfg().handshake_timeout);
        continue;
      }
      if (!co_await s->read_client()) {
        if (s->timed_out && !s->buf.empty()) {
          spdlog::debug("client sent an incomplete request head before the deadline");
        }
        co_return;
      }
    }
    if (parsed.status == proto::parse_status::error) {
      if (first) {
        s->metrics().on_accept(s->protocol);
      }
      s->metrics().on_request(s->protocol, admin::request_outcome::client_error);
      {
        const std::string reply =
            error_reply(*s, make_error(pool::failure::bad_request, parsed.error, {}, parsed.error_status));
        co_await s->write_client(reply);
      }
      co_return;
    }
    s->buf.erase(0, parsed.consumed);
    if (first) {
      s->protocol = parsed.head.method == "CONNECT" ? admin::client_protocol::connect : admin::client_protocol::http;
      s->metrics().on_accept(s->protocol);
    }
    if (parsed.head.method == "CONNECT") {
      co_await handle_connect(s, std::move(parsed.head));
      co_return;
    }
    if (!co_await handle_forward(s, std::move(parsed.head))) {
      co_return;
    }
  }
}

// ---- SOCKS5 front ----

// The BND address of a SOCKS5 success reply: the local end of a direct exit's
// connection (which source address a rotating direct:// pool used); through a proxy exit
// the gateway does not know it (0.0.0.0:0, and no getsockname).
socks5::address bound_address(connect_outcome& c) {
  socks5::address bound;
  error_code ec;
  const bool direct = c.attempt.chosen().spec().scheme == proto::exit_scheme::direct;
  auto local = direct ? c.dial.upstream.socket().local_endpoint(ec) : tcp::endpoint{};
  if (direct && !ec) {
    bound.type = local.address().is_v4() ? socks5::address::kind::ipv4 : socks5::address::kind::ipv6;
    bound.host = local.address().to_string();
    bound.port = local.port();
  } else {
    bound.host = "0.0.0.0";
  }
  return bound;
}

template <typename Parse>
awaitable<std::optional<std::invoke_result_t<Parse, std::string_view>>> read_socks(std::shared_ptr<session> s,
                                                                                   Parse parse) {
  for (;;) {
    auto r = parse(std::string_view(s->buf));
    if (r.st != socks5::status::incomplete) {
      if (r.st == socks5::status::complete) {
        s->buf.erase(0, r.consumed);
      }
      co_return r;
    }
    if (!co_await s->read_client()) {
      co_return std::nullopt;
    }
  }
}

awaitable<void> serve_socks5(std::shared_ptr<session> s) {
  s->protocol = admin::client_protocol::socks5;
  s->metrics().on_accept(s->protocol);
  request_record record(*s);
  auto greeting = co_await read_socks(s, socks5::parse_greeting);
  if (!greeting) {
    co_return;
  }
  if (greeting->st == socks5::status::error) {
    spdlog::debug("bad SOCKS5 greeting: {}", greeting->error);
    {
      const std::string reply = socks5::make_method_choice(socks5::method::none_acceptable);
      co_await s->write_client(reply);
    }
    co_return;
  }
  const auto rules = rules_of(*s);
  const std::uint8_t method = refused_by_address(rules)
                                  ? socks5::method::none_acceptable
                                  : choose_socks5_method(greeting->methods, credentials_required(rules));
  const std::string choice = socks5::make_method_choice(method);
  if (!co_await s->write_client(choice) || method == socks5::method::none_acceptable) {
    co_return;
  }
  std::optional<credentials> creds;
  if (method == socks5::method::userpass) {
    auto up = co_await read_socks(s, socks5::parse_userpass);
    if (!up) {
      co_return;
    }
    if (up->st == socks5::status::error) {
      const std::string reply = socks5::make_userpass_status(false);
      co_await s->write_client(reply);
      co_return;
    }
    creds = credentials{std::move(up->user), std::move(up->pass)};
  }
  auto admitted = admit(*s, creds);
  if (!admitted.params) {
    spdlog::info("SOCKS5 {} refused: {}",
                 admitted.refusal.kind == pool::failure::auth_failed ? "authentication" : "connection",
                 proto::clip(admitted.refusal.message, 512));
    const std::string reply = socks5::make_userpass_status(false);
    co_await s->write_client(reply);
    co_return;
  }
  if (method == socks5::method::userpass) {
    const std::string accepted = socks5::make_userpass_status(true);
    if (!co_await s->write_client(accepted)) {
      co_return;
    }
  }
  auto req = co_await read_socks(s, socks5::parse_request);
  if (!req) {
    co_return;
  }
  if (req->st == socks5::status::error) {
    {
      const std::string reply = socks5::make_reply(req->error_reply);
      co_await s->write_client(reply);
    }
    co_return;
  }
  if (req->cmd != socks5::command::connect) {
    {
      const std::string reply = socks5::make_reply(socks5::reply::command_not_supported);
      co_await s->write_client(reply);
    }
    co_return;
  }
  s->arm(clock::duration::zero());
  std::vector<const pool::exit*> tried;
  auto c = co_await connect_via_pool(s->shard, *admitted.params, req->dst.host, req->dst.port, net::dial_mode::tunnel,
                                     tried);
  record.outcome = admin::outcome_of(c.error.kind);
  if (c.error) {
    spdlog::debug("SOCKS5 CONNECT {} failed: {}", proto::clip(proto::format_authority(req->dst.host, req->dst.port)),
                  proto::clip(c.error.message, 512));
    {
      const std::string reply = socks5::make_reply(c.socks);
      co_await s->write_client(reply);
    }
    co_return;
  }
  const socks5::address bound = bound_address(c);
  const std::string granted = socks5::make_reply(socks5::reply::succeeded, &bound);
  if (!co_await s->write_client(granted)) {
    co_return;
  }
  co_await relay_tunnel(s, std::move(c));
}

awaitable<void> serve(std::shared_ptr<session> s) {
  s->arm_deadline(s->cfg().handshake_timeout);
  if (!co_await s->read_client()) {
    co_return;
  }
  const auto first = static_cast<unsigned char>(s->buf.front());
  if (first == socks5::version) {
    co_await serve_socks5(s);
  } else if (first == 0x04) {
    // SOCKS4: answer "request rejected" in its own format rather than garbage.
    const char reject[8] = {0x00, 0x5b, 0, 0, 0, 0, 0, 0};
    {
      const std::string reply(reject, sizeof reject);
      co_await s->write_client(reply);
    }
  } else {
    co_await serve_http(s);
  }
}

// Over --max-connections: answer in the client's protocol, then close.
awaitable<void> refuse_overloaded(std::shared_ptr<session> s) {
  s->arm_deadline(s->cfg().handshake_timeout);
  if (!co_await s->read_client()) {
    co_return;
  }
  if (static_cast<unsigned char>(s->buf.front()) == socks5::version) {
    const std::string reply = socks5::make_method_choice(socks5::method::none_acceptable);
    co_await s->write_client(reply);
    co_return;
  }
  const std::string reply = error_reply(
      *s, make_error(pool::failure::overloaded,
                     fmt::format("too many client connections (--max-connections {})", s->cfg().max_connections), "1"));
  co_await s->write_client(reply);
}

}  // namespace

awaitable<void> run_session(tcp::socket socket, shard_state& shard, const proto::route_params* port_options) {
  // TCP_NODELAY comes from the listening socket (accepted sockets inherit it on Linux).
  auto s = std::make_shared<session>(std::move(socket), shard);
  s->port_options = port_options;
  if (const auto& allowed = shard.shared.allow_clients; !allowed.empty()) {
    error_code ec;
    const auto peer = s->client.socket().remote_endpoint(ec);
    s->allowlisted =
        !ec && std::any_of(allowed.begin(), allowed.end(), [&](const cidr& c) { return c.contains(peer.address()); });
  }
  const int max = shard.shared.cfg.max_connections;
  if (max > 0 && s->open_connections > max) {
    co_await refuse_overloaded(s);
  } else {
    co_await serve(s);
  }
  if (!s->relay && !s->tls_relay) {  // a handed-off tunnel finishes the session itself
    s->finish();
  }
}

}  // namespace exitpool::gateway
