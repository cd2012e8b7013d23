#include "proto/user_params.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <vector>

#include "proto/text.hpp"

namespace exitpool::proto {
namespace {

enum class option { country, city, type, session, session_minutes, session_busy, zone, state, asn };

std::optional<option> lookup_key(std::string_view key) {
  const std::string k = lower(key);
  if (k == "country" || k == "cc" || k == "region") {
    return option::country;
  }
  if (k == "city") {
    return option::city;
  }
  if (k == "type") {
    return option::type;
  }
  if (k == "session" || k == "sessid") {
    return option::session;
  }
  if (k == "sesstime" || k == "sessionduration") {
    return option::session_minutes;
  }
  if (k == "sessbusy") {
    return option::session_busy;
  }
  if (k == "zone") {
    return option::zone;
  }
  if (k == "state" || k == "st") {
    return option::state;
  }
  if (k == "asn") {
    return option::asn;
  }
  return std::nullopt;
}

const char* option_name(option o) {
  switch (o) {
    case option::country:
      return "country";
    case option::city:
      return "city";
    case option::type:
      return "type";
    case option::session:
      return "session";
    case option::session_minutes:
      return "sesstime";
    case option::session_busy:
      return "sessbusy";
    case option::zone:
      return "zone";
    case option::state:
      return "state";
    case option::asn:
      return "asn";
  }
  return "?";
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  while (true) {
    const auto at = s.find(sep);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) {
      return parts;
    }
    s.remove_prefix(at + 1);
  }
}

// Normalised option values gathered from both fields, with where each came from.
struct collector {
  struct slot {
    std::string value;
    const char* field = nullptr;
  };
  std::array<slot, 9> slots;
  int minutes_ = 0;
  std::string error;

  bool add(std::string_view key, std::string_view raw, const char* field) {
    const auto o = lookup_key(key);
    if (!o) {
      error = fmt::format("unknown option '{}' in {}", clip(key, 32), field);
      return false;
    }
    if (raw.empty()) {
      error = fmt::format("empty value for '{}' in {}", clip(key, 32), field);
      return false;
    }
    if (raw.size() > max_option_bytes) {
      error = fmt::format("value of '{}' in {} too long ({} bytes, at most {})", option_name(*o), field, raw.size(),
                          max_option_bytes);
      return false;
    }
    std::string value;
    switch (*o) {
      case option::country:
      case option::city:
      case option::type:
      case option::zone:
      case option::state:
      case option::asn:
        value = lower(raw);
        break;
      case option::session:
        value = std::string(raw);
        break;
      case option::session_busy:
        value = lower(raw);
        if (value != "wait" && value != "move") {
          error = fmt::format("bad {} '{}' in {} (want wait or move)", clip(key, 32), clip(raw, 32), field);
          return false;
        }
        break;
      case option::session_minutes: {
        int minutes = 0;
        bool ok = raw.size() <= 4;
        for (std::size_t i = 0; ok && i < raw.size(); ++i) {
          ok = raw[i] >= '0' && raw[i] <= '9';
          minutes = minutes * 10 + (raw[i] - '0');
        }
        if (!ok || minutes < 1 || minutes > 1440) {
          error = fmt::format("bad {} '{}' in {} (want minutes 1..1440)", clip(key, 32), clip(raw, 32), field);
          return false;
        }
        value = std::to_string(minutes);
        minutes_ = minutes;
        break;
      }
    }
    auto& s = slots[static_cast<std::size_t>(*o)];
    if (s.field != nullptr && s.value != value) {
      error = fmt::format("conflicting values for '{}': '{}' in {}, '{}' in {}", option_name(*o), clip(s.value, 32),
                          s.field, clip(value, 32), field);
      return false;
    }
    s.value = std::move(value);
    s.field = field;
    return true;
  }
};

// The password carries options when every part after the first '_' has the shape
// KEY-VALUE (KEY made of letters). Their keys must then be known: a misspelt option is
// an error, never silently part of the password. "my_secret" stays a password.
bool password_has_options(const std::vector<std::string_view>& parts) {
  if (parts.size() < 2) {
    return false;
  }
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const auto dash = parts[i].find('-');
    if (dash == std::string_view::npos || dash == 0) {
      return false;
    }
    for (char c : parts[i].substr(0, dash)) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

params_result parse_credentials(std::string_view username, std::string_view password,
                                const std::function<bool(std::string_view)>& is_user) {
  params_result result;
  if (username.size() > max_credential_bytes || password.size() > max_credential_bytes) {
    result.error = fmt::format("{} too long ({} bytes, at most {})",
                               username.size() > max_credential_bytes ? "username" : "password",
                               std::max(username.size(), password.size()), max_credential_bytes);
    return result;
  }
  route_params params;
  collector options;

  const auto parts = split(username, '-');
  std::size_t user_parts = 1;
  if (is_user) {
    // The longest '-'-joined prefix that names a known user; with none, fall back to the
    // first part so that the caller's credential check fails with the usual answer.
    for (std::size_t k = parts.size(); k >= 1; --k) {
      const std::string_view prefix =
          username.substr(0, static_cast<std::size_t>(parts[k - 1].data() - username.data()) + parts[k - 1].size());
      if (is_user(prefix)) {
        user_parts = k;
        break;
      }
    }
  }
  params.user = std::string(username.substr(
      0, static_cast<std::size_t>(parts[user_parts - 1].data() - username.data()) + parts[user_parts - 1].size()));
  if (params.user.empty()) {
    result.error = "empty user name";
    return result;
  }
  for (std::size_t i = user_parts; i < parts.size(); i += 2) {
    if (i + 1 >= parts.size()) {
      if (!lookup_key(parts[i])) {
        result.error = fmt::format("unknown option '{}' in username", clip(parts[i], 32));
      } else {
        result.error = fmt::format("option '{}' has no value in username", clip(parts[i], 32));
      }
      return result;
    }
    if (!options.add(parts[i], parts[i + 1], "username")) {
      result.error = std::move(options.error);
      return result;
    }
  }

  const auto pparts = split(password, '_');
  if (password_has_options(pparts)) {
    params.password = std::string(pparts.front());
    for (std::size_t i = 1; i < pparts.size(); ++i) {
      const auto dash = pparts[i].find('-');
      if (!options.add(pparts[i].substr(0, dash), pparts[i].substr(dash + 1), "password")) {
        result.error = std::move(options.error);
        return result;
      }
    }
  } else {
    params.password = std::string(password);
  }

  params.country = options.slots[static_cast<std::size_t>(option::country)].value;
  params.city = options.slots[static_cast<std::size_t>(option::city)].value;
  params.type = options.slots[static_cast<std::size_t>(option::type)].value;
  params.state = options.slots[static_cast<std::size_t>(option::state)].value;
  params.asn = options.slots[static_cast<std::size_t>(option::asn)].value;
  params.session = options.slots[static_cast<std::size_t>(option::session)].value;
  const auto& minutes = options.slots[static_cast<std::size_t>(option::session_minutes)];
  if (minutes.field != nullptr) {
    params.session_minutes = options.minutes_;
  }
  const auto& busy = options.slots[static_cast<std::size_t>(option::session_busy)];
  if (busy.field != nullptr) {
    params.session_move_when_busy = busy.value == "move";
  }
  result.params = std::move(params);
  return result;
}

}  // namespace exitpool::proto
