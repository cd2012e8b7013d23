// libFuzzer target: what the gateway reads from SOCKS5 clients, in protocol order on
// one buffer: greeting, then username/password (RFC 1929), then the request.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "proto/socks5.hpp"

namespace {

using namespace exitpool::proto::socks5;
using exitpool::fuzz::as_view;

// Every strict prefix of a complete message is incomplete (checked at both ends).
template <typename Parse>
void check_prefixes(std::string_view msg, Parse parse) {
  FUZZ_CHECK(parse(msg.substr(0, msg.size() - 1)).st == status::incomplete);
  FUZZ_CHECK(parse(msg.substr(0, 1)).st != status::complete || msg.size() == 1);
  FUZZ_CHECK(parse(std::string_view{}).st == status::incomplete);
}

// A parsed address survives make_reply → parse_reply unchanged.
void check_address(const address& a) {
  const auto reply_bytes = make_reply(reply::succeeded, &a);
  const auto back = parse_reply(reply_bytes);
  FUZZ_CHECK(back.st == status::complete && back.consumed == reply_bytes.size());
  FUZZ_CHECK(back.bound.type == a.type && back.bound.host == a.host && back.bound.port == a.port);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view buf = as_view(data, size);

  const auto g = parse_greeting(buf);
  if (g.st == status::error) {
    FUZZ_CHECK(!g.error.empty());
    return 0;
  }
  if (g.st == status::incomplete) {
    FUZZ_CHECK(g.consumed == 0);
    return 0;
  }
  FUZZ_CHECK(g.consumed <= buf.size());
  FUZZ_CHECK(!g.methods.empty() && g.consumed == 2 + g.methods.size());
  check_prefixes(buf.substr(0, g.consumed), parse_greeting);
  buf.remove_prefix(g.consumed);

  // A client that chose username/password sends it next; one that did not, the request.
  const auto u = parse_userpass(buf);
  if (u.st == status::complete) {
    FUZZ_CHECK(u.consumed <= buf.size());
    FUZZ_CHECK(u.consumed == 3 + u.user.size() + u.pass.size());
    FUZZ_CHECK(!u.user.empty() && u.user.size() <= 255 && u.pass.size() <= 255);
    check_prefixes(buf.substr(0, u.consumed), parse_userpass);
    FUZZ_CHECK(make_userpass(u.user, u.pass) == buf.substr(0, u.consumed));
    buf.remove_prefix(u.consumed);
  } else if (u.st == status::error) {
    FUZZ_CHECK(!u.error.empty());
  }

  const auto r = parse_request(buf);
  if (r.st == status::error) {
    FUZZ_CHECK(!r.error.empty());
    return 0;
  }
  if (r.st == status::incomplete) {
    FUZZ_CHECK(r.consumed == 0);
    return 0;
  }
  FUZZ_CHECK(r.consumed <= buf.size());
  check_prefixes(buf.substr(0, r.consumed), parse_request);
  FUZZ_CHECK(!r.dst.host.empty());
  check_address(r.dst);
  // A CONNECT to an IP literal re-encodes to the same bytes.
  if (r.cmd == command::connect && r.dst.type != address::kind::domain) {
    FUZZ_CHECK(make_connect(r.dst.host, r.dst.port) == buf.substr(0, r.consumed));
  }
  return 0;
}
