// libFuzzer target: options in proxy credentials (parse_credentials). The input is
// "username\0password" (no NUL: all username, empty password); each is parsed without
// and with an is_user callback. Options never leak the password into an error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "proto/user_params.hpp"

namespace {

using namespace exitpool::proto;
using exitpool::fuzz::as_view;

constexpr std::string_view secret = "Zq7SECRETzQ";

bool is_lower(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') {
      return false;
    }
  }
  return true;
}

void check(std::string_view user, std::string_view pass, const std::function<bool(std::string_view)>& is_user) {
  const auto r = parse_credentials(user, pass, is_user);
  if (!r.params) {
    FUZZ_CHECK(!r.error.empty());
    return;
  }
  const auto& p = *r.params;
  FUZZ_CHECK(r.error.empty());
  FUZZ_CHECK(!p.user.empty() && user.starts_with(p.user));
  FUZZ_CHECK(p.user.size() == user.size() || user[p.user.size()] == '-');
  if (is_user && p.user.size() < user.size() && p.user.find('-') != std::string::npos) {
    FUZZ_CHECK(is_user(p.user));
  }
  FUZZ_CHECK(pass.starts_with(p.password));
  FUZZ_CHECK(is_lower(p.country) && is_lower(p.city) && is_lower(p.type));
  if (p.session_minutes) {
    FUZZ_CHECK(*p.session_minutes >= 1 && *p.session_minutes <= 1440);
  }
  if (p.user.size() == user.size() && p.password.size() == pass.size()) {
    FUZZ_CHECK(p.country.empty() && p.city.empty() && p.type.empty() && p.session.empty() && !p.session_minutes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = as_view(data, size);
  const auto nul = in.find('\0');
  const auto user = in.substr(0, nul);
  const auto pass = nul == std::string_view::npos ? std::string_view{} : in.substr(nul + 1);

  check(user, pass, {});
  // Known users: "alice-bob", "x-y-z" and any name ending in "u" (so prefixes of the input match).
  const std::function<bool(std::string_view)> is_user = [](std::string_view s) {
    return s == "alice-bob" || s == "x-y-z" || (!s.empty() && s.back() == 'u');
  };
  check(user, pass, is_user);

  // The password proper (before its first '_') replaced by a marker: never in an error.
  if (pass.find(secret) == std::string_view::npos && user.find(secret) == std::string_view::npos) {
    const auto us = pass.find('_');
    const std::string marked = std::string(secret) + std::string(us == std::string_view::npos ? "" : pass.substr(us));
    const auto r = parse_credentials(user, marked, is_user);
    FUZZ_CHECK(r.error.find(secret) == std::string::npos);
  }
  return 0;
}
