// libFuzzer target: client request heads (parse_request_head), their body framing
// (request_body_framing), the targets in them, and a chunked body after the head.
#include <cstddef>
#include <cstdint>
#include <string>

#include "chunked_check.hpp"
#include "gateway/head_rewrite.hpp"
#include "http_check.hpp"

namespace {

using namespace exitpool;
using namespace exitpool::fuzz;

// The head sent on (gateway/head_rewrite.hpp): it parses, its one Host is the
// target's authority whatever the client's Host said, and no client credentials pass.
void check_rewrite(const proto::request_head& head, const proto::absolute_target& t) {
  for (auto scheme : {proto::exit_scheme::direct, proto::exit_scheme::http}) {
    proto::exit_spec spec;
    spec.scheme = scheme;
    const auto out = gateway::upstream_request_head(head, t, spec, true, false, 7);
    const auto again = proto::parse_request_head(out, {1 << 20, 1 << 20, 1000});
    FUZZ_CHECK(again.status == proto::parse_status::complete && again.consumed == out.size());
    int hosts = 0;
    for (const auto& h : again.head.headers) {
      if (proto::iequals(h.name, "host")) {
        ++hosts;
        FUZZ_CHECK(h.value == proto::authority_of(head.target));
      }
      FUZZ_CHECK(!proto::iequals(h.name, "proxy-authorization"));
    }
    FUZZ_CHECK(hosts == 1);
    const auto* mf = proto::find_header(again.head.headers, "Max-Forwards");
    FUZZ_CHECK(mf != nullptr && mf->value == "7");
  }
}

void check_target(const proto::request_head& head) {
  if (const auto t = proto::parse_absolute_target(head.target)) {
    check_rewrite(head, *t);
    FUZZ_CHECK(!t->origin_form.empty() && t->origin_form.front() == '/');
    FUZZ_CHECK(t->where.port != 0);
    const auto again = proto::parse_authority(proto::format_authority(t->where.host, t->where.port), 0);
    FUZZ_CHECK(again && again->host == t->where.host && again->port == t->where.port);
  }
  if (head.method == "CONNECT") {
    if (const auto a = proto::parse_authority(head.target, 0)) {
      FUZZ_CHECK(a->port != 0 && !a->host.empty());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto buf = as_view(data, size);
  input_rng rng(buf);
  const auto limits = pick_limits(rng);
  const auto parse = [&limits](std::string_view b) { return proto::parse_request_head(b, limits); };
  const auto r = parse(buf);
  switch (r.status) {
    case proto::parse_status::incomplete:
      FUZZ_CHECK(r.consumed == 0 && r.error_status == 0);
      return 0;
    case proto::parse_status::error:
      FUZZ_CHECK(r.consumed == 0);
      FUZZ_CHECK(!r.error.empty());
      FUZZ_CHECK(r.error_status == 400 || r.error_status == 414 || r.error_status == 431 || r.error_status == 501 ||
                 r.error_status == 505);
      return 0;
    case proto::parse_status::complete:
      break;
  }
  FUZZ_CHECK(r.consumed <= size);
  FUZZ_CHECK(r.error_status == 0 && r.error.empty());
  FUZZ_CHECK(!r.head.method.empty() && !r.head.target.empty());
  FUZZ_CHECK(r.head.version_minor == 0 || r.head.version_minor == 1);
  check_headers(r.head.headers, limits);
  check_prefixes(buf, r.consumed, rng, parse);

  // Re-serialized, the head parses to the same thing.
  const std::string again_text = r.head.method + " " + r.head.target + " HTTP/1." +
                                 std::to_string(r.head.version_minor) + "\r\n" + serialize_headers(r.head.headers);
  const auto again = proto::parse_request_head(again_text);
  FUZZ_CHECK(again.status == proto::parse_status::complete && again.consumed == again_text.size());
  FUZZ_CHECK(again.head.method == r.head.method && again.head.target == r.head.target);
  FUZZ_CHECK(again.head.version_minor == r.head.version_minor);
  FUZZ_CHECK(same_headers(again.head.headers, r.head.headers));

  check_target(r.head);
  for (const auto& h : r.head.headers) {
    (void)proto::is_hop_by_hop(h.name, r.head.headers);
  }

  const auto framing = proto::request_body_framing(r.head);
  if (!framing.framing) {
    FUZZ_CHECK(!framing.error.empty());
    FUZZ_CHECK(framing.error_status == 400 || framing.error_status == 501);
    return 0;
  }
  FUZZ_CHECK(framing.framing->kind != proto::body_kind::until_close);  // requests never run until close
  if (framing.framing->kind == proto::body_kind::chunked) {
    check_chunked(buf.substr(r.consumed), rng);
  }
  return 0;
}
