#pragma once
// The chunked_scanner invariants, shared by fuzz_chunked and the HTTP head targets:
// feeding a body in arbitrary pieces gives the same end (or the same error) as feeding
// it at once, no feed claims more than it was given, and the scanner stays in its
// final state (done or error) once it is there.

#include <string_view>

#include "fuzz_check.hpp"
#include "proto/http_head.hpp"

namespace exitpool::fuzz {

struct chunked_outcome {
  bool done = false;
  bool error = false;
  std::size_t consumed = 0;  // total bytes claimed by the body
};

// Feeds `body` in pieces whose sizes come from `rng` (when given), else in one piece.
inline chunked_outcome scan_chunked(std::string_view body, input_rng* rng) {
  proto::chunked_scanner scanner;
  chunked_outcome out;
  std::size_t pos = 0;
  do {
    std::size_t n = body.size() - pos;
    if (rng != nullptr && n > 0) {
      n = 1 + rng->below(rng->below(4) == 0 ? n : (n < 16 ? n : 16));
    }
    const auto piece = body.substr(pos, n);
    const auto r = scanner.feed(piece);
    FUZZ_CHECK(r.consumed <= piece.size());
    FUZZ_CHECK(!(r.done && r.error));
    out.consumed += r.consumed;
    if (r.error) {
      FUZZ_CHECK(!scanner.error_reason().empty());
      out.error = true;
      break;
    }
    if (r.done) {
      out.done = true;
      break;
    }
    // Not finished: the scanner keeps state and wants every byte it was given.
    FUZZ_CHECK(r.consumed == piece.size());
    pos += n;
  } while (pos < body.size());
  if (out.done || out.error) {
    // Final states are sticky and claim nothing more.
    const auto again = scanner.feed("0\r\n\r\n");
    FUZZ_CHECK(again.consumed == 0);
    FUZZ_CHECK(again.done == out.done && again.error == out.error);
  }
  return out;
}

// Whole versus pieces; and the end of a complete body does not depend on what follows it.
inline chunked_outcome check_chunked(std::string_view body, input_rng& rng) {
  const auto whole = scan_chunked(body, nullptr);
  const auto split = scan_chunked(body, &rng);
  FUZZ_CHECK(whole.done == split.done);
  FUZZ_CHECK(whole.error == split.error);
  FUZZ_CHECK(whole.consumed == split.consumed);
  if (whole.done) {
    FUZZ_CHECK(whole.consumed <= body.size());
    const auto exact = scan_chunked(body.substr(0, whole.consumed), nullptr);
    FUZZ_CHECK(exact.done && exact.consumed == whole.consumed);
    const auto short_by_one = scan_chunked(body.substr(0, whole.consumed - 1), nullptr);
    FUZZ_CHECK(!short_by_one.done && !short_by_one.error);
  }
  return whole;
}

}  // namespace exitpool::fuzz
