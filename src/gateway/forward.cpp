#include "gateway/forward.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio.hpp>

#include "gateway/head_rewrite.hpp"
#include "net/splice.hpp"
#include "pool/ban_policy.hpp"
#include "proto/text.hpp"

namespace exitpool::gateway {

namespace {

namespace asio = boost::asio;
using net::awaitable;
using net::clock;

// Copies a message body of the given framing from `from` (with `pending` bytes
// already read from it) to `to`. Bytes after the body stay in `pending`. A chunked
// body's trailer section is held back until complete and sent filtered (proto::
// filter_trailers: the rules of headers, and never proxy credentials); `head_headers` is
// the message's header section (its Connection header names more hop-by-hop fields).
// When both sides are plain TCP, runs of at least splice_min body bytes whose extent is
// known (the rest of a fixed-length body, the rest of a chunk, a body that ends at close)
// move by splice(2) without entering this process (net/splice.hpp).
// Returns false if either side failed before the body was complete.
constexpr std::uint64_t splice_min = 32 * 1024;

awaitable<bool> copy_body(net::stream& from, std::string& pending, net::stream& to, proto::body_framing framing,
                          const std::vector<proto::header>& head_headers, net::activity& act, std::uint64_t& copied,
                          net::pipe_pool& pipes) {
  using proto::body_kind;
  if (framing.kind == body_kind::none) {
    co_return true;
  }
  std::uint64_t remaining = framing.length;
  proto::chunked_scanner scanner;
  std::string trailers;            // the trailer section so far (bounded by the scanner)
  std::unique_ptr<char[]> buffer;  // only when the socket has to be read (most bodies arrive with the head)
  // Borrowed from the shard's pool by the first splice and given back at the end, unless a
  // splice was cut short (by an error, or by this frame's destruction mid-wait): such a
  // pipe may hold bytes of this body, and is closed instead.
  struct borrowed {
    net::pipe_pool& pool;
    net::splice_pipe pipe;
    bool clean = true;
    ~borrowed() {
      if (clean) {
        pool.give(std::move(pipe));
      }
    }
  } pipe{pipes, {}};
  const bool plain = from.is_plain() && to.is_plain();
  for (;;) {
    if (!pending.empty()) {
      std::size_t take = 0;
      std::size_t send = 0;  // of `take`, the bytes that go out as they are
      bool finished = false;
      if (framing.kind == body_kind::content_length) {
        take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, pending.size()));
        remaining -= take;
        finished = remaining == 0;
        send = take;
      } else if (framing.kind == body_kind::chunked) {
        auto r = scanner.feed(pending);
        if (r.error) {
          co_return false;
        }
        take = r.consumed;
        finished = r.done;
        send = take;
        if (r.trailer_from != std::string_view::npos) {
          send = r.trailer_from;
          trailers.append(pending, send, take - send);
          if (finished && trailers.size() == 2 && send + 2 == take) {
            send = take;  // no trailer fields, the usual case: the final CRLF goes out as is
            trailers.clear();
          }
        }
      } else {
        take = pending.size();
        send = take;
      }
      std::string_view out(pending.data(), send);
      std::string with_trailers;
      if (finished && !trailers.empty()) {
        with_trailers.reserve(send + trailers.size());
        with_trailers.append(out);
        proto::filter_trailers(trailers, head_headers, with_trailers);
        out = with_trailers;
      }
      if (!out.empty()) {
        auto [ec, n] = co_await to.write_all(asio::buffer(out.data(), out.size()));
        if (ec) {
          co_return false;
        }
        copied += out.size();
      }
      pending.erase(0, take);
      if (finished) {
        co_return true;
      }
    } else if (framing.kind == body_kind::content_length && remaining == 0) {
      co_return true;
    }
    if (plain) {
      std::optional<std::uint64_t> run;  // bytes to splice; none: until `from` closes
      bool splice = framing.kind == body_kind::until_close;
      if (framing.kind == body_kind::content_length && remaining >= splice_min) {
        run = remaining;
        splice = true;
      } else if (framing.kind == body_kind::chunked && scanner.data_remaining() >= splice_min) {
        run = scanner.data_remaining();
        splice = true;
      }
      if (splice) {
        if (!pipe.pipe.is_open()) {
          pipe.pipe = pipes.take();
        }
        pipe.clean = false;
        const auto r = co_await net::splice_copy(from.socket(), to.socket(), run, pipe.pipe, act);
        pipe.clean = !r.error;
        copied += r.bytes;
        if (r.error || (run && r.bytes < *run)) {
          co_return false;
        }
        if (framing.kind == body_kind::until_close) {
          co_return true;  // `from` closed: the end of the body
        }
        if (framing.kind == body_kind::content_length) {
          co_return true;  // the run was the rest of the body
        }
        scanner.skip_data(r.bytes);  // chunked: on to the chunk's CRLF and the next size line
        continue;
      }
    }
    if (!buffer) {
      buffer = std::make_unique_for_overwrite<char[]>(16 * 1024);
    }
    auto [ec, n] = co_await from.read_some(asio::buffer(buffer.get(), 16 * 1024));
    if (n > 0) {
      act.touch();
      pending.append(buffer.get(), n);
      continue;
    }
    if (ec) {
      // Reading until close: EOF is the end of the body.
      co_return framing.kind == body_kind::until_close&& ec == asio::error::eof;
    }
  }
}

// Reads the final response head from the exit (interim 1xx heads are dropped: we
// answered 100-continue ourselves). Bytes after the head stay in `rbuf`.
awaitable<std::optional<proto::response_head>> read_response_head(std::shared_ptr<session> s, std::string& rbuf,
                                                                  const std::string& exit_id, http_error& error) {
  for (;;) {
    auto parsed = proto::parse_response_head(rbuf);
    if (parsed.status == proto::parse_status::error) {
      error = make_error(pool::failure::http_protocol_error,
                         "exit " + exit_id + " sent a malformed response: " + parsed.error);
      co_return std::nullopt;
    }
    if (parsed.status == proto::parse_status::complete) {
      rbuf.erase(0, parsed.consumed);
      if (parsed.head.status >= 100 && parsed.head.status < 200 && parsed.head.status != 101) {
        continue;
      }
      co_return std::move(parsed.head);
    }
    std::size_t old = rbuf.size();
    rbuf.resize(old + 8192);
    auto [ec, n] = co_await s->upstream.read_some(asio::buffer(rbuf.data() + old, 8192));
    rbuf.resize(old + n);
    if (n == 0 && ec) {
      error = s->upstream_timed_out || s->timed_out
                  ? make_error(pool::failure::response_timeout,
                               fmt::format("exit {} sent no response head within {} s", exit_id,
                                           s->cfg().response_timeout.count() / 1000.0))
                  : make_error(pool::failure::response_incomplete,
                               "exit " + exit_id + " closed before responding: " + ec.message());
      co_return std::nullopt;
    }
    s->act.touch();
  }
}

// The ban policy's verdict on an answer (pool/ban_policy.hpp). With ban patterns, up to
// 16 KiB of the body are read ahead first (they stay in rbuf for the client).
awaitable<std::optional<std::chrono::milliseconds>> judge_ban(std::shared_ptr<session> s,
                                                              const proto::response_head& resp,
                                                              proto::body_framing framing, std::string& rbuf) {
  const auto& policy = s->shard.shared.ban_policy;
  if (!policy.may_ban(resp.status)) {
    co_return std::nullopt;
  }
  if (policy.reads_body()) {
    while (framing.kind != proto::body_kind::none && rbuf.size() < pool::ban_policy::look_ahead &&
           !(framing.kind == proto::body_kind::content_length && rbuf.size() >= framing.length)) {
      std::size_t old = rbuf.size();
      rbuf.resize(old + 8192);
      auto [ec, n] = co_await s->upstream.read_some(asio::buffer(rbuf.data() + old, 8192));
      rbuf.resize(old + n);
      if (ec) {
        break;  // the body ends here (or fails); copy_body reports which
      }
    }
  }
  // The one sample builder fetch's test compares against (tests/unit/fetch/head_capture_test.cpp).
  std::string header_lines;
  co_return policy.judge(pool::sample_of(resp, rbuf, header_lines), std::chrono::system_clock::now());
}

}  // namespace

awaitable<round_result> forward_round(std::shared_ptr<session> s, const proto::request_head& head,
                                      const forward_plan& plan, connect_outcome& c) {
  round_result r;
  s->upstream = std::move(c.dial.upstream);
  pool::exit& chosen = c.attempt.chosen();
  const std::string exit_id = chosen.id();
  std::string out =
      upstream_request_head(head, plan.target, chosen.spec(), plan.expect_continue, plan.replayable, plan.max_forwards);
  // A small body already read from the client goes out with the head, in one write.
  proto::body_framing body = plan.body;
  if (body.kind == proto::body_kind::content_length && body.length <= 16 * 1024 && s->buf.size() >= body.length &&
      !c.reused) {
    const auto n = static_cast<std::size_t>(body.length);
    out.append(s->buf, 0, n);
    s->buf.erase(0, n);
    body.length = 0;
  }
  const auto sent_at = clock::now();
  // Through an HTTP proxy exit the answer is the exit's own; from a direct or SOCKS exit
  // it is the target's, and the exit proved itself when the dial completed. A reused
  // connection was no dial: its answer says nothing about the exit's health.
  const bool via_proxy = proto::is_http_proxy_scheme(chosen.spec().scheme);
  const pool::fault answer_fault = via_proxy && !c.reused ? pool::fault::exit : pool::fault::target;
  auto complete = [&](pool::fault who, pool::failure error, int status = 0,
                      std::optional<std::chrono::milliseconds> ban = std::nullopt) {
    const auto now = clock::now();
    pool::attempt_outcome o;
    o.who = who;
    o.error = error;
    o.status = status;
    o.ban = ban;
    o.connected = !c.reused && (status != 0 || !via_proxy);
    o.latency =
        via_proxy && !c.reused ? std::chrono::duration_cast<std::chrono::microseconds>(now - sent_at) : c.dial_latency;
    c.attempt.complete(o, now);
  };
  s->arm(s->cfg().idle_timeout);
  auto [wec, wn] = co_await s->upstream.write_all(asio::buffer(out));
  if (wec && c.reused) {
    // The idle connection was closed under us: same request, fresh connection.
    s->upstream.close();
    r.what = round_result::end::replay;
    co_return r;
  }
  if (wec) {
    complete(answer_fault, pool::failure::connection_terminated);
    r.error = make_error(pool::failure::connection_terminated,
                         "exit " + exit_id + " closed while sending the request: " + wec.message());
    co_return r;
  }
  std::uint64_t bytes_up = 0;
  if (!co_await copy_body(s->client, s->buf, s->upstream, body, head.headers, s->act, bytes_up, s->shard.body_pipes)) {
    complete(pool::fault::client, pool::failure::bad_request);
    r.error = make_error(pool::failure::bad_request, "request body incomplete or malformed");
    co_return r;
  }
  exit_answer& a = r.answer;
  a.exit_id = exit_id;
  a.reuse_key = c.reuse_key;
  a.bytes_up = bytes_up + out.size();
  s->arm_upstream_deadline(s->cfg().response_timeout);
  auto resp = co_await read_response_head(s, a.rbuf, exit_id, r.error);
  s->arm(s->cfg().idle_timeout);
  if (!resp && c.reused && a.rbuf.empty() && !s->upstream_timed_out) {
    s->upstream.close();
    r.what = round_result::end::replay;
    co_return r;
  }
  std::optional<proto::body_framing> rframing;
  if (resp) {
    auto f = proto::response_body_framing(*resp, head.method);
    rframing = f.framing;
    if (!rframing) {
      r.error = make_error(pool::failure::http_protocol_error,
                           "exit " + exit_id + " sent a response with bad framing: " + f.error);
    }
  }
  if (!rframing) {
    // No usable answer (silence, garbage, hang-up) from a fresh connection.
    complete(answer_fault, r.error.kind);
    s->upstream.close();
    spdlog::debug("request to {} via exit {} failed: {}", proto::lower(plan.target.where.host), exit_id,
                  r.error.message);
    r.what = round_result::end::no_answer;
    co_return r;
  }
  a.resp = std::move(*resp);
  a.framing = *rframing;
  r.ban = co_await judge_ban(s, a.resp, a.framing, a.rbuf);
  complete(pool::fault::none, pool::failure::none, a.resp.status, r.ban);
  if (r.ban) {
    spdlog::debug("exit {} banned for {} for {} s (status {})", exit_id, proto::lower(plan.target.where.host),
                  r.ban->count() / 1000, a.resp.status);
  }
  a.upstream = std::move(s->upstream);
  r.what = round_result::end::answered;
  co_return r;
}

awaitable<bool> forward_answer(std::shared_ptr<session> s, exit_answer a, bool keep_client, request_record& record) {
  record.outcome = admin::request_outcome::ok;
  s->upstream = std::move(a.upstream);
  const bool keep =
      client_keeps_alive(keep_client, a.framing.kind, s->shard.shared.draining.load(std::memory_order_relaxed));
  // The head, and the body bytes already read with it when they are few, go out in one
  // write: a small response costs one send.
  constexpr std::size_t coalesce_max = 16 * 1024;
  std::size_t body_now = 0;
  if (a.framing.kind == proto::body_kind::content_length) {
    body_now = static_cast<std::size_t>(std::min<std::uint64_t>(a.framing.length, a.rbuf.size()));
  } else if (a.framing.kind == proto::body_kind::until_close) {
    body_now = a.rbuf.size();
  }
  if (body_now > coalesce_max) {
    body_now = 0;
  }
  std::string rhead = client_response_head(a.resp, a.exit_id, keep, body_now);
  if (body_now > 0) {
    rhead.append(a.rbuf, 0, body_now);
    a.rbuf.erase(0, body_now);
    if (a.framing.kind == proto::body_kind::content_length) {
      a.framing.length -= body_now;
    }
  }
  s->metrics().on_http_response(a.resp.status);
  if (!co_await s->write_client(rhead)) {
    co_return false;
  }
  std::uint64_t bytes_down = 0;
  bool complete = co_await copy_body(s->upstream, a.rbuf, s->client, a.framing, a.resp.headers, s->act, bytes_down,
                                     s->shard.body_pipes);
  s->metrics().on_bytes(a.bytes_up, bytes_down + rhead.size());
  if (complete && !a.reuse_key.empty() && a.rbuf.empty() && upstream_keeps_alive(a.resp, a.framing.kind)) {
    s->shard.idle_upstreams.put(a.reuse_key, std::move(s->upstream), clock::now());
  } else {
    s->upstream.close();
  }
  s->upstream = net::stream();
  co_return complete&& keep;
}

}  // namespace exitpool::gateway
