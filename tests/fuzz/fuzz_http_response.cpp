// libFuzzer target: upstream response heads (parse_response_head), their body framing
// for a GET, HEAD or CONNECT request (response_body_framing), and the rest of the input
// fed to chunked_scanner in random pieces.
#include <cstddef>
#include <cstdint>
#include <string>

#include "chunked_check.hpp"
#include "http_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exitpool;
  using namespace exitpool::fuzz;
  const auto buf = as_view(data, size);
  input_rng rng(buf);
  const auto limits = pick_limits(rng);
  const auto parse = [&limits](std::string_view b) { return proto::parse_response_head(b, limits); };
  const auto r = parse(buf);
  if (r.status == proto::parse_status::incomplete) {
    FUZZ_CHECK(r.consumed == 0);
    return 0;
  }
  if (r.status == proto::parse_status::error) {
    FUZZ_CHECK(r.consumed == 0 && !r.error.empty());
    return 0;
  }
  FUZZ_CHECK(r.consumed <= size && r.error.empty());
  FUZZ_CHECK(r.head.status >= 100 && r.head.status <= 999);
  FUZZ_CHECK(r.head.version_minor == 0 || r.head.version_minor == 1);
  check_headers(r.head.headers, limits);
  check_prefixes(buf, r.consumed, rng, parse);

  std::string again_text = "HTTP/1." + std::to_string(r.head.version_minor) + " " + std::to_string(r.head.status);
  if (!r.head.reason.empty()) {
    again_text += " " + r.head.reason;
  }
  again_text += "\r\n" + serialize_headers(r.head.headers);
  const auto again = proto::parse_response_head(again_text);
  FUZZ_CHECK(again.status == proto::parse_status::complete && again.consumed == again_text.size());
  FUZZ_CHECK(again.head.status == r.head.status && again.head.reason == r.head.reason);
  FUZZ_CHECK(again.head.version_minor == r.head.version_minor);
  FUZZ_CHECK(same_headers(again.head.headers, r.head.headers));

  static constexpr std::string_view methods[] = {"GET", "POST", "HEAD", "CONNECT"};
  const auto method = methods[rng.below(4)];
  const auto framing = proto::response_body_framing(r.head, method);
  if (!framing.framing) {
    FUZZ_CHECK(!framing.error.empty());
    FUZZ_CHECK(framing.error_status == 400 || framing.error_status == 501);
    return 0;
  }
  if (method == "HEAD" || r.head.status < 200 || r.head.status == 204 || r.head.status == 304) {
    FUZZ_CHECK(framing.framing->kind == proto::body_kind::none);
  }
  if (framing.framing->kind == proto::body_kind::chunked) {
    check_chunked(buf.substr(r.consumed), rng);
  }
  return 0;
}
