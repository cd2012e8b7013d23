// libFuzzer target: authorities and absolute-form targets (parse_authority,
// parse_absolute_target, format_authority) and Basic credentials (base64):
// decode(encode(x)) == x, and whatever decodes is the canonical encoding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "proto/base64.hpp"
#include "proto/http_head.hpp"

namespace {

using namespace exitpool::proto;
using exitpool::fuzz::as_view;

void check_authority(std::string_view s, std::uint16_t default_port) {
  const auto a = parse_authority(s, default_port);
  if (!a) {
    return;
  }
  FUZZ_CHECK(!a->host.empty() && a->port != 0);
  FUZZ_CHECK(default_port != 0 || s.find(':') != std::string_view::npos);
  const auto text = format_authority(a->host, a->port);
  const auto again = parse_authority(text, 0);
  FUZZ_CHECK(again && again->host == a->host && again->port == a->port);
  FUZZ_CHECK(format_authority(again->host, again->port) == text);
}

void check_target(std::string_view s) {
  const auto t = parse_absolute_target(s);
  if (!t) {
    return;
  }
  FUZZ_CHECK(!t->scheme.empty() && !t->where.host.empty() && t->where.port != 0);
  FUZZ_CHECK(!t->origin_form.empty() && t->origin_form.front() == '/');
  FUZZ_CHECK(t->origin_form.find('#') == std::string::npos);
  for (char c : t->scheme) {
    FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
  }
  // Put back together from its parts, the target parses to the same parts.
  const std::string rebuilt = t->scheme + "://" + format_authority(t->where.host, t->where.port) + t->origin_form;
  const auto again = parse_absolute_target(rebuilt);
  FUZZ_CHECK(again && again->scheme == t->scheme && again->where.host == t->where.host &&
             again->where.port == t->where.port && again->origin_form == t->origin_form);
}

void check_base64(std::string_view s) {
  const auto encoded = base64_encode(s);
  FUZZ_CHECK(encoded.size() == (s.size() + 2) / 3 * 4);
  const auto decoded = base64_decode(encoded);
  FUZZ_CHECK(decoded && *decoded == s);
  if (const auto d = base64_decode(s)) {
    FUZZ_CHECK(base64_encode(*d) == s);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto s = as_view(data, size);
  check_authority(s, 0);
  check_authority(s, 80);
  check_target(s);
  check_base64(s);
  return 0;
}
