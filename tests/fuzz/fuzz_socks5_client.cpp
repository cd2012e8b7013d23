// libFuzzer target: what the gateway reads from socks5:// exits, in protocol order on
// one buffer: method choice, username/password status, then the reply to CONNECT.
// Each parser also runs on the whole input on its own.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "proto/socks5.hpp"

namespace {

using namespace exitpool::proto::socks5;
using exitpool::fuzz::as_view;

// A complete reply re-encodes (make_reply) to exactly the bytes it was parsed from.
void check_reply(std::string_view buf) {
  const auto r = parse_reply(buf);
  if (r.st == status::error) {
    FUZZ_CHECK(!r.error.empty());
    return;
  }
  if (r.st == status::incomplete) {
    FUZZ_CHECK(r.consumed == 0);
    return;
  }
  FUZZ_CHECK(r.consumed >= 7 && r.consumed <= buf.size());
  FUZZ_CHECK(parse_reply(buf.substr(0, r.consumed - 1)).st == status::incomplete);
  FUZZ_CHECK(make_reply(r.code, &r.bound) == buf.substr(0, r.consumed));
  (void)describe(r.code);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view buf = as_view(data, size);
  check_reply(buf);
  const auto alone = parse_userpass_status(buf);
  FUZZ_CHECK(alone.consumed <= buf.size());

  const auto m = parse_method_choice(buf);
  if (m.st != status::complete) {
    FUZZ_CHECK(m.consumed == 0);
    return 0;
  }
  FUZZ_CHECK(m.consumed == 2 && m.consumed <= buf.size());
  FUZZ_CHECK(make_method_choice(m.method) == buf.substr(0, 2));
  buf.remove_prefix(m.consumed);
  if (m.method == method::userpass) {
    const auto s = parse_userpass_status(buf);
    if (s.st != status::complete) {
      FUZZ_CHECK(s.consumed == 0);
      return 0;
    }
    FUZZ_CHECK(s.consumed == 2 && s.consumed <= buf.size());
    FUZZ_CHECK(s.ok == (buf[1] == 0));
    buf.remove_prefix(s.consumed);
  }
  check_reply(buf);
  return 0;
}
