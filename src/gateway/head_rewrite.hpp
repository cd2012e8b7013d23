#pragma once
// The heads the gateway writes when it forwards an absolute-form request: the request
// head sent to the exit, and the response head sent back to the client. Bodies are
// never re-encoded (proto/http_head.hpp finds where they end); only heads change.
//
// Pure: no I/O, no Asio. Any thread. Each head is built by appending into one reserved
// string (no temporaries per header): this runs once per forwarded request.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/http_head.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::gateway {

// The request head as sent to the exit: origin-form to the target (direct and SOCKS
// exits) or absolute-form with the exit's own credentials (HTTP proxy exits); always
// HTTP/1.1. Hop-by-hop headers are dropped, the client's Proxy-Authorization among
// them (never leaked to the target or the exit); Expect too when `drop_expect` (the
// gateway answered 100-continue itself). Host comes first and is always the authority
// of the absolute-form target (RFC 9112 section 3.2.2): the client's own Host is
// dropped, so the target the access policy checked is the one the origin is told.
// With `max_forwards`, Max-Forwards is replaced by that value (RFC 9110 section 7.6.2:
// the caller has decremented it). Ends with "Connection: keep-alive" when `keep_alive`,
// else "Connection: close". `head.target` must be absolute-form (plan_forward).
std::string upstream_request_head(const proto::request_head& head, const proto::absolute_target& target,
                                  const proto::exit_spec& spec, bool drop_expect, bool keep_alive,
                                  std::optional<std::uint32_t> max_forwards = std::nullopt);

// The gateway's own answer to a TRACE or OPTIONS request with "Max-Forwards: 0"
// (RFC 9110 section 7.6.2: the gateway is the last recipient). TRACE: 200 with the
// request head as received, as message/http, less the fields that carry secrets
// (Authorization, Proxy-Authorization, Cookie: section 9.3.8). OPTIONS: 200 with Allow
// and no content. "Connection: keep-alive" when `keep_alive`, else "close".
std::string own_answer(const proto::request_head& head, bool keep_alive);

// The response head as sent to the client: HTTP/1.1 with the exit's status (clamped to
// 100..999) and reason, its end-to-end headers, X-Exitpool-Exit naming the exit, and
// "Connection: keep-alive" or "close". `reserve_extra` bytes are reserved after the
// head for body bytes the caller appends to send both in one write.
std::string client_response_head(const proto::response_head& resp, std::string_view exit_id, bool keep_alive,
                                 std::size_t reserve_extra = 0);

}  // namespace exitpool::gateway
