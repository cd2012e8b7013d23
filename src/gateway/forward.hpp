#pragma once
// Forwarding an absolute-form request through one exit: one round sends the rewritten
// head (gateway/head_rewrite.hpp) and the body, reads the exit's response head, judges
// it against the ban policy and completes the attempt; forward_answer then relays the
// answer to the client and keeps the exit's connection for reuse when it can. Which
// exit, and whether to go on to another one, is the caller's (session.cpp:
// handle_forward, with gateway/http_request.hpp's decisions).
//
// Internal to the gateway; runs on the session's shard.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "gateway/connect.hpp"
#include "gateway/http_request.hpp"
#include "gateway/session_state.hpp"
#include "proto/http_head.hpp"

namespace exitpool::gateway {

// An exit's answer to a forwarded request, head read, body not yet relayed.
struct exit_answer {
  std::string exit_id;
  std::string reuse_key;  // non-empty: the connection may be kept alive afterwards
  net::stream upstream;
  proto::response_head resp;
  proto::body_framing framing;
  std::string rbuf;  // body bytes already read
  std::uint64_t bytes_up = 0;
};

// How one round with one exit ended.
struct round_result {
  enum class end {
    replay,     // an idle kept-alive connection turned out closed: send again on a fresh one
    failed,     // the request could not be delivered (the exit hung up, the client's body
                // broke off): answer `error`, the client connection ends
    no_answer,  // no usable answer from the exit (`error`); the attempt is completed
    answered,   // `answer` (head read; the attempt is completed, with `ban` when judged a ban)
  };
  end what = end::failed;
  http_error error;
  exit_answer answer;
  std::optional<std::chrono::milliseconds> ban;
};

// Sends `head` (planned as `plan`) through the connection `c` got, and reads the answer
// head. Uses s->upstream for the exchange; an answer takes it along. `c` stays the
// caller's: its attempt (the exit's lease) lives until the caller is done.
net::awaitable<round_result> forward_round(std::shared_ptr<session> s, const proto::request_head& head,
                                           const forward_plan& plan, connect_outcome& c);

// Relays an answer to the client: head (client_response_head) and body, then keeps the
// exit's connection for reuse or closes it. Counts the request as ok in `record`.
// Returns true when the client connection may carry another request.
net::awaitable<bool> forward_answer(std::shared_ptr<session> s, exit_answer a, bool keep_client,
                                    request_record& record);

}  // namespace exitpool::gateway
