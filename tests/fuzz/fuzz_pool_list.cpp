// libFuzzer target: pool lists as sources hand them out (parse_pool_list: pool lines, vendor
// lines, JSON, with a source's defaults). Errors are pool_error naming the list; accepted exits
// have ids, unique ones; the defaults' password never shows in an error unless the input has it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "fuzz_check.hpp"
#include "proto/pool_list.hpp"

namespace {

using namespace exitpool::proto;
using exitpool::fuzz::as_view;

constexpr std::string_view list_name = "fuzz-list";
constexpr std::string_view secret = "Zq7SECRETzQ";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text = as_view(data, size);
  // The first byte picks the defaults, so that every path of apply() is reached.
  const std::uint8_t mode = size > 0 ? data[0] : 0;
  if (size > 0) {
    text.remove_prefix(1);
  }
  list_defaults d;
  if ((mode & 1) != 0) {
    d.tags = "country=us type=isp tier=1 weight=2 pool=x";
  }
  if ((mode & 2) != 0) {
    d.scheme = exit_scheme::socks5;
  }
  if ((mode & 4) != 0) {
    d.user = "acct";
    d.pass = std::string(secret);
  }
  const bool allow_empty = (mode & 8) != 0;
  FUZZ_CHECK(check_list_defaults(d).empty());
  try {
    const auto exits = parse_pool_list(text, list_name, d, allow_empty);
    FUZZ_CHECK(allow_empty || !exits.empty());
    std::unordered_set<std::string> ids;
    for (const auto& e : exits) {
      FUZZ_CHECK(!e.id.empty());
      FUZZ_CHECK(ids.insert(e.id).second);
      FUZZ_CHECK(e.line >= 1);
    }
  } catch (const pool_error& e) {
    const std::string what = e.what();
    FUZZ_CHECK(what.starts_with(std::string(list_name) + ":"));
    if (text.find(secret) == std::string_view::npos) {
      FUZZ_CHECK(what.find(secret) == std::string::npos);
    }
  }
  return 0;
}
