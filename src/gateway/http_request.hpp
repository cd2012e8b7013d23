#pragma once
// What a client's HTTP proxy request asks for, and what the gateway may do with it:
// the CONNECT target, the plan for an absolute-form request (target, body framing,
// 100-continue), and the keep-alive and retry decisions on both sides.
//
// Pure: facts in, decisions out; no I/O, no Asio. Any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/errors.hpp"
#include "proto/http_head.hpp"

namespace exitpool::gateway {

// The client wants its connection kept after this request: HTTP/1.1 unless Connection
// (or the legacy Proxy-Connection) lists "close"; HTTP/1.0 only when one lists
// "keep-alive".
bool wants_keep_alive(const proto::request_head& head);
// The request carries "Expect: 100-continue".
bool is_expect_continue(const proto::request_head& head);
// RFC 9110 section 9.2.2 (methods are case-sensitive): GET, HEAD, OPTIONS, TRACE, PUT, DELETE.
bool is_idempotent(std::string_view method);

struct connect_target_result {
  std::optional<proto::authority> where;  // set when usable
  http_error refusal;                     // bad_request (400) otherwise
};
// The target of a CONNECT request: "host:port", "[v6]:port"; the port is required.
connect_target_result connect_target(const proto::request_head& head);

// Why a target host name from any front (CONNECT, absolute-form, SOCKS5) cannot be
// dialled whatever the exit, or "" when it can: empty, or over 255 bytes (no DNS name is
// that long, and a SOCKS5 exit cannot be sent one). Checked before any exit is picked, so
// a client's bad input never reaches an exit's health.
std::string target_name_problem(std::string_view host);

// An absolute-form request the gateway will forward.
struct forward_plan {
  proto::absolute_target target;
  proto::body_framing body;
  bool keep_client = false;      // wants_keep_alive
  bool expect_continue = false;  // Expect: 100-continue: dropped from the head sent on
  // Answer "100 Continue" ourselves before any exit is picked (HTTP/1.1 with a body):
  // the body must reach the gateway first.
  bool answer_continue = false;
  // Idempotent and without a body: may be sent again, to another exit (after a ban or
  // no usable answer) or on a fresh connection (when a kept-alive one turns out
  // closed). Only such requests use kept-alive upstream connections.
  bool replayable = false;
  // TRACE / OPTIONS with Max-Forwards (RFC 9110 section 7.6.2): 0 makes the gateway the
  // last recipient (`answer_here`: own_answer, no exit is used); a larger value goes on
  // decremented (`max_forwards`).
  bool answer_here = false;
  std::optional<std::uint32_t> max_forwards;
};

struct forward_plan_result {
  std::optional<forward_plan> plan;  // set when the request can be forwarded
  // Otherwise bad_request: 400 for a target that is not absolute-form http:// (with a
  // hint for origin-form), 400 for any other scheme: https:// must use CONNECT (the
  // gateway does not originate TLS: the client would lose end-to-end TLS and certificate
  // checks), ftp://, ws:// and the like are not HTTP; the framing's own status (400 /
  // 501) for a body whose length cannot be known; 400 for a Max-Forwards that is not a
  // number.
  http_error refusal;
};
forward_plan_result plan_forward(const proto::request_head& head);

// Why one exit did not give a forwarded request an answer to pass on.
enum class exit_problem {
  no_answer,  // silence, garbage or a hang-up, on a fresh connection
  banned,     // an answer, judged a ban (pool/ban_policy.hpp)
};
// Whether the request goes on to another exit after round `round` (0 for the first
// exit) ended with `problem`: only a replayable request, and at most `retries`
// further exits after no answer, `ban_retries` after a ban (--retries, --ban-retries).
bool retry_elsewhere(const forward_plan& plan, exit_problem problem, int round, int retries, int ban_retries);

// The client's connection carries another request after this answer: the client wants
// it, the answer's end is not marked by closing, and the gateway is not draining.
bool client_keeps_alive(bool keep_client, proto::body_kind answer_body, bool draining);

// The exit's connection may serve another request once this answer's body has been
// read to its end: HTTP/1.1, a body not delimited by closing, no "Connection: close".
bool upstream_keeps_alive(const proto::response_head& resp, proto::body_kind answer_body);

}  // namespace exitpool::gateway
