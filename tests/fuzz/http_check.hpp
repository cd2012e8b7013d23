#pragma once
// Checks shared by fuzz_http_request and fuzz_http_response.

#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "proto/http_head.hpp"

namespace exitpool::fuzz {

// Small limits now and then, so that the 414/431 paths are reached with short inputs.
inline proto::head_limits pick_limits(input_rng& rng) {
  proto::head_limits limits;
  if (rng.below(4) == 0) {
    limits.max_head_bytes = 64 + rng.below(512);
    limits.max_line_bytes = 16 + rng.below(256);
    limits.max_headers = rng.below(8);
  }
  return limits;
}

inline void check_headers(const std::vector<proto::header>& headers, const proto::head_limits& limits) {
  FUZZ_CHECK(headers.size() <= limits.max_headers);
  for (const auto& h : headers) {
    FUZZ_CHECK(!h.name.empty());
    for (char c : h.name + h.value) {
      const auto u = static_cast<unsigned char>(c);
      FUZZ_CHECK(u != '\r' && u != '\n' && u != 0);
    }
    if (!h.value.empty()) {
      FUZZ_CHECK(h.value.front() != ' ' && h.value.front() != '\t');
      FUZZ_CHECK(h.value.back() != ' ' && h.value.back() != '\t');
    }
  }
}

inline std::string serialize_headers(const std::vector<proto::header>& headers) {
  std::string out;
  for (const auto& h : headers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

inline bool same_headers(const std::vector<proto::header>& a, const std::vector<proto::header>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].value != b[i].value) {
      return false;
    }
  }
  return true;
}

// A complete head is complete on its own bytes, and a few of its strict prefixes
// (the longest, and two at random) are incomplete, never errors: the gateway must
// not answer 400 to a client that has simply not sent everything yet.
template <typename Parse>
void check_prefixes(std::string_view buf, std::size_t consumed, input_rng& rng, Parse parse) {
  FUZZ_CHECK(consumed > 0 && consumed <= buf.size());
  const auto exact = parse(buf.substr(0, consumed));
  FUZZ_CHECK(exact.status == proto::parse_status::complete && exact.consumed == consumed);
  const std::size_t cuts[] = {consumed - 1, rng.below(consumed), rng.below(consumed)};
  for (std::size_t cut : cuts) {
    const auto r = parse(buf.substr(0, cut));
    FUZZ_CHECK(r.status == proto::parse_status::incomplete);
    FUZZ_CHECK(r.consumed == 0);
  }
}

}  // namespace exitpool::fuzz
