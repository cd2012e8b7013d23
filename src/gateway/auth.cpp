#include "gateway/auth.hpp"

#include <algorithm>
#include <functional>

#include "proto/base64.hpp"
#include "proto/socks5.hpp"
#include "proto/text.hpp"

namespace exitpool::gateway {

std::optional<credentials> basic_credentials(const proto::request_head& head) {
  const auto* h = proto::find_header(head.headers, "Proxy-Authorization");
  if (h == nullptr) {
    return std::nullopt;
  }
  std::string_view v = h->value;
  if (v.size() < 6 || !proto::iequals(v.substr(0, 6), "basic ")) {
    return credentials{};  // present but unusable: refused by authenticate
  }
  v.remove_prefix(6);
  while (!v.empty() && v.front() == ' ') {
    v.remove_prefix(1);
  }
  auto decoded = proto::base64_decode(v);
  if (!decoded) {
    return credentials{};
  }
  auto colon = decoded->find(':');
  if (colon == std::string::npos) {
    return credentials{*decoded, std::string()};
  }
  return credentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

auth_result authenticate(const user_table& users, const std::optional<credentials>& creds) {
  auth_result r;
  if (!creds) {
    if (!users.empty()) {
      r.error = "proxy authentication required";
      return r;
    }
    r.params.emplace();
    return r;
  }
  std::function<bool(std::string_view)> is_user;
  if (!users.empty()) {
    is_user = [&users](std::string_view u) { return users.find(std::string(u)) != users.end(); };
  }
  auto parsed = proto::parse_credentials(creds->user, creds->password, is_user);
  if (!parsed.params) {
    r.error = parsed.error;
    return r;
  }
  if (!users.empty()) {
    auto it = users.find(parsed.params->user);
    if (it == users.end() || !proto::constant_time_equal(it->second, parsed.params->password)) {
      r.error = "bad username or password";
      return r;
    }
  }
  r.params = std::move(parsed.params);
  return r;
}

std::uint8_t choose_socks5_method(std::span<const std::uint8_t> offered, bool users_configured) {
  namespace method = proto::socks5::method;
  auto offers = [&](std::uint8_t m) { return std::find(offered.begin(), offered.end(), m) != offered.end(); };
  if (offers(method::userpass)) {
    return method::userpass;
  }
  return !users_configured && offers(method::no_auth) ? method::no_auth : method::none_acceptable;
}

}  // namespace exitpool::gateway
