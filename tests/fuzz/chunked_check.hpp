#pragma once
// The chunked_scanner invariants, shared by fuzz_chunked and the HTTP head targets:
// feeding a body in arbitrary pieces gives the same end (or the same error) as feeding
// it at once, no feed claims more than it was given, and the scanner stays in its
// final state (done or error) once it is there.

#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "proto/http_head.hpp"

namespace exitpool::fuzz {

struct chunked_outcome {
  bool done = false;
  bool error = false;
  std::size_t consumed = 0;                         // total bytes claimed by the body
  std::string trailers;                             // the trailer section, as copy_body holds it back
  std::size_t trailer_at = std::string_view::npos;  // where it starts in the body
};

// What copy_body sends for a trailer section: one line per kept field, the final CRLF,
// nothing forbidden, and a section the scanner accepts again.
inline void check_trailers(const chunked_outcome& whole, std::string_view body) {
  if (!whole.done) {
    return;
  }
  FUZZ_CHECK(whole.trailer_at != std::string_view::npos);
  FUZZ_CHECK(body.substr(whole.trailer_at, whole.consumed - whole.trailer_at) == whole.trailers);
  const std::vector<proto::header> head = {{"Connection", "x-hop, keep-alive"}};
  std::string out;
  proto::filter_trailers(whole.trailers, head, out);
  FUZZ_CHECK(out.size() >= 2 && out.size() <= whole.trailers.size() && out.ends_with("\r\n"));
  std::string_view rest(out);
  while (rest.size() > 2) {
    const auto eol = rest.find("\r\n");
    FUZZ_CHECK(eol != std::string_view::npos);
    const auto line = rest.substr(0, eol);
    const auto colon = line.find(':');
    FUZZ_CHECK(colon != std::string_view::npos && colon > 0);
    FUZZ_CHECK(!proto::is_forbidden_trailer(line.substr(0, colon), head));
    FUZZ_CHECK(whole.trailers.find(std::string(line) + "\r\n") != std::string::npos);
    rest.remove_prefix(eol + 2);
  }
  FUZZ_CHECK(rest == "\r\n");
  proto::chunked_scanner again;
  const std::string resent = "0\r\n" + out;
  const auto r = again.feed(resent);
  FUZZ_CHECK(r.done && r.consumed == resent.size() && r.trailer_from == 3);
}

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
    if (r.trailer_from != std::string_view::npos && !r.error) {
      FUZZ_CHECK(r.trailer_from <= r.consumed);
      if (out.trailer_at == std::string_view::npos) {
        out.trailer_at = pos + r.trailer_from;
      } else {
        FUZZ_CHECK(r.trailer_from == 0);
      }
      out.trailers.append(piece.substr(r.trailer_from, r.consumed - r.trailer_from));
    }
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
  // Trailer bytes count only for a body that ends well: an error inside the trailer section
  // is seen by the pieces after they reported the trailer bytes before it, by the whole at once.
  FUZZ_CHECK(!whole.done || (whole.trailers == split.trailers && whole.trailer_at == split.trailer_at));
  check_trailers(whole, body);
  // The check before the head goes out agrees with the scanner: an error there is an
  // error of the whole body, and a complete first line is not one.
  const auto start = proto::check_chunked_start(body);
  if (start.status == proto::parse_status::error) {
    FUZZ_CHECK(whole.error);
  }
  if (start.status != proto::parse_status::complete && !whole.error && body.size() < 4096) {
    FUZZ_CHECK(!whole.done);
  }
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
