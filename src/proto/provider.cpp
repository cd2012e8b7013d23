#include "proto/provider.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include "proto/text.hpp"

namespace exitpool::proto {
namespace {

constexpr std::array<const char*, placeholder_count> names = {"user", "pass", "country", "state",
                                                              "city", "asn",  "session", "sesstime"};

// What a credential must never hold: ':' ends a Basic username, '@' and '%' are read as
// URL syntax by many clients and providers; control bytes break header lines.
bool bad_credential_char(char c) {
  return c == ':' || c == '@' || c == '%' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
}

// The styles each placeholder takes (README.md "Provider gateways").
struct style_name {
  placeholder p;
  std::string_view name;
  value_style style;
};
constexpr std::array<style_name, 8> styles = {{{placeholder::country, "upper", value_style::upper},
                                               {placeholder::country, "uk", value_style::uk},
                                               {placeholder::city, "compact", value_style::compact},
                                               {placeholder::city, "plus", value_style::plus},
                                               {placeholder::session, "8", value_style::alnum8},
                                               {placeholder::session, "digits", value_style::digits},
                                               {placeholder::sesstime, "seconds", value_style::seconds},
                                               {placeholder::sesstime, "m", value_style::minutes_m}}};

std::optional<value_style> style_for(placeholder p, std::string_view s) {
  if (s.empty()) {
    return value_style::plain;
  }
  for (const auto& st : styles) {
    if (st.p == p && st.name == s) {
      return st.style;
    }
  }
  return std::nullopt;
}

// Session ids in base 32 (0-9a-v), five bits a character: shifts, no division.
void append_base32(std::uint64_t v, std::size_t n, std::string& out) {
  constexpr std::string_view digits = "0123456789abcdefghijklmnopqrstuv";
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[v & 31]);
    v >>= 5;
  }
}

void append_number(std::uint64_t v, std::string& out) {
  std::array<char, 24> buf{};
  const auto [p, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), p);
}

void append_value(const template_part& part, std::string_view value, const render_input& in, std::string& out) {
  switch (part.style) {
    case value_style::upper:
      for (char c : value) {
        out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
      }
      return;
    case value_style::uk:
      out.append(value == "gb" ? std::string_view("uk") : value);
      return;
    case value_style::compact:
      for (char c : value) {
        if (c != '_' && c != '-' && c != '+') {
          out.push_back(c);
        }
      }
      return;
    case value_style::plus:
      for (char c : value) {
        out.push_back(c == '_' ? '+' : c);
      }
      return;
    default:
      break;
  }
  if (part.name == placeholder::session) {
    if (part.style == value_style::alnum8) {
      append_base32(in.session, 8, out);
    } else if (part.style == value_style::digits) {
      append_number(1 + in.session % 99999999, out);
    } else {
      append_base32(in.session, 12, out);
    }
    return;
  }
  if (part.name == placeholder::sesstime) {
    const auto minutes = static_cast<std::uint64_t>(in.sesstime_minutes);
    append_number(part.style == value_style::seconds ? minutes * 60 : minutes, out);
    if (part.style == value_style::minutes_m) {
      out.push_back('m');
    }
    return;
  }
  out.append(value);
}

std::string_view value_of(placeholder p, const render_input& in) {
  switch (p) {
    case placeholder::user:
      return in.user;
    case placeholder::pass:
      return in.pass;
    case placeholder::country:
      return in.country;
    case placeholder::state:
      return in.state;
    case placeholder::city:
      return in.city;
    case placeholder::asn:
      return in.asn;
    case placeholder::session:
      return in.has_session ? std::string_view("s") : std::string_view();
    case placeholder::sesstime:
      return in.sesstime_minutes > 0 ? std::string_view("t") : std::string_view();
  }
  return {};
}

// "us,de" or "*": lower-cased values, or any.
std::string parse_list(std::string_view text, std::string_view key, bool& any, std::vector<std::string>& out) {
  if (text == "*") {
    any = true;
    return {};
  }
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    if (item.empty() || item == "*") {
      return fmt::format("bad {} '{}' (want a comma-separated list or *)", key, text);
    }
    for (char c : item) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      if (!ok) {
        return fmt::format("bad {} value '{}' (letters, digits and '_')", key, item);
      }
    }
    out.push_back(lower(item));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return {};
}

bool listed(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

const char* placeholder_name(placeholder p) {
  return names[static_cast<std::size_t>(p)];
}

bool credential_template::uses(placeholder p) const {
  return std::any_of(parts.begin(), parts.end(),
                     [p](const template_part& part) { return part.has_placeholder && part.name == p; });
}

template_result compile_template(std::string_view text) {
  template_result r;
  credential_template t;
  t.source.assign(text);
  template_part part;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '}') {
      r.error = fmt::format("unmatched '}}' in template '{}'", clip(text, 80));
      return r;
    }
    if (c != '{') {
      if (bad_credential_char(c)) {
        r.error = fmt::format("template '{}' holds '{}': credentials cannot carry ':', '@', '%' or control bytes",
                              clip(text, 80), clip(std::string_view(&text[i], 1)));
        return r;
      }
      part.key.push_back(c);
      ++i;
      continue;
    }
    const auto close = text.find('}', i);
    if (close == std::string_view::npos) {
      r.error = fmt::format("unclosed '{{' in template '{}'", clip(text, 80));
      return r;
    }
    std::string_view inner = text.substr(i + 1, close - i - 1);
    std::string_view fallback;
    if (const auto bar = inner.find('|'); bar != std::string_view::npos) {
      fallback = inner.substr(bar + 1);
      inner = inner.substr(0, bar);
    }
    std::string_view style;
    if (const auto colon = inner.find(':'); colon != std::string_view::npos) {
      style = inner.substr(colon + 1);
      inner = inner.substr(0, colon);
    }
    const auto* found = std::find(names.begin(), names.end(), inner);
    if (found == names.end()) {
      r.error = fmt::format(
          "unknown placeholder '{{{}}}' in template '{}' (known: user pass country state city asn "
          "session sesstime)",
          clip(inner, 32), clip(text, 80));
      return r;
    }
    part.has_placeholder = true;
    part.name = static_cast<placeholder>(found - names.begin());
    const auto s = style_for(part.name, style);
    if (!s) {
      r.error = fmt::format("unknown style '{}' for {{{}}} in template '{}'", clip(style, 32), inner, clip(text, 80));
      return r;
    }
    part.style = *s;
    if (std::any_of(fallback.begin(), fallback.end(), bad_credential_char) || fallback.find('{') != fallback.npos) {
      r.error = fmt::format("bad fallback '{}' in template '{}'", clip(fallback, 32), clip(text, 80));
      return r;
    }
    part.fallback.assign(fallback);
    t.literal_bytes += part.key.size() + part.fallback.size();
    t.parts.push_back(std::move(part));
    part = template_part{};
    i = close + 1;
  }
  if (!part.key.empty()) {
    t.literal_bytes += part.key.size();
    t.parts.push_back(std::move(part));
  }
  if (t.parts.empty()) {
    r.error = "empty template";
    return r;
  }
  r.tpl = std::move(t);
  return r;
}

void render(const credential_template& t, const render_input& in, std::string& out) {
  out.reserve(out.size() + t.literal_bytes + in.user.size() + in.pass.size() + in.country.size() + in.state.size() +
              in.city.size() + in.asn.size() + 32);
  for (const auto& part : t.parts) {
    if (!part.has_placeholder) {
      out.append(part.key);
      continue;
    }
    const std::string_view value = value_of(part.name, in);
    if (value.empty()) {
      if (!part.fallback.empty()) {
        out.append(part.key);
        out.append(part.fallback);
      }
      continue;  // dropped with its key
    }
    out.append(part.key);
    append_value(part, value, in, out);
  }
}

void session_token(std::uint64_t session, std::string& out) {
  append_base32(session, 12, out);
}

bool provider_line::serves(std::string_view country, std::string_view city, std::string_view state,
                           std::string_view asn) const {
  if (!country.empty() && (!uses(placeholder::country) || (!any_country && !listed(countries, country)))) {
    return false;
  }
  if (!city.empty() && (!uses(placeholder::city) || (!any_city && !listed(cities, city)))) {
    return false;
  }
  if (!state.empty() && !uses(placeholder::state)) {
    return false;
  }
  return asn.empty() || uses(placeholder::asn);
}

const std::vector<std::string_view>& preset_names() {
  static const std::vector<std::string_view> list = {"brightdata", "oxylabs", "decodo",  "iproyal",
                                                     "soax",       "netnut",  "abcproxy"};
  return list;
}

// Each preset's grammar, and the page it follows: README.md "Provider gateways".
std::optional<preset_templates> find_preset(std::string_view name) {
  if (name == "brightdata") {
    return preset_templates{"{user}-country-{country}-state-{state}-city-{city:compact}-asn-{asn}-session-{session}",
                            "{pass}"};
  }
  if (name == "oxylabs") {
    return preset_templates{
        "customer-{user}-cc-{country:upper}-st-{state}-city-{city}-ASN-{asn}-sessid-{session}-sesstime-{sesstime}",
        "{pass}"};
  }
  if (name == "decodo") {
    return preset_templates{
        "user-{user}-country-{country}-state-{state}-city-{city}-session-{session}-sessionduration-{sesstime}",
        "{pass}"};
  }
  if (name == "iproyal") {
    return preset_templates{
        "{user}",
        "{pass}_country-{country}_state-{state}_city-{city:compact}_session-{session:8}_lifetime-{sesstime:m}"};
  }
  if (name == "soax") {
    return preset_templates{
        "package-{user}-country-{country}-region-{state}-city-{city:plus}-sessionid-{session}-sessionlength-{sesstime:"
        "seconds}",
        "{pass}"};
  }
  if (name == "netnut") {
    return preset_templates{"{user}-res-{country:uk|any}-sid-{session:digits}", "{pass}"};
  }
  if (name == "abcproxy") {
    return preset_templates{
        "{user}-zone-abc-region-{country}-st-{state}-city-{city}-session-{session}-sessTime-{sesstime}", "{pass}"};
  }
  return std::nullopt;
}

provider_result make_provider_line(const provider_keys& keys, std::string_view user, std::string_view pass) {
  provider_result r;
  auto fail = [&r](std::string msg) {
    r.error = std::move(msg);
    return r;
  };
  auto line = std::make_shared<provider_line>();
  std::string_view user_text = keys.user_template;
  std::string_view pass_text = keys.pass_template;
  if (!keys.provider.empty()) {
    const auto preset = find_preset(lower(keys.provider));
    if (!preset) {
      std::string known;
      for (auto n : preset_names()) {
        known += known.empty() ? "" : ", ";
        known += n;
      }
      return fail(fmt::format("unknown provider '{}' (known: {})", clip(keys.provider, 32), known));
    }
    line->preset = lower(keys.provider);
    // A custom template may still replace one of the two.
    user_text = user_text.empty() ? preset->user : user_text;
    pass_text = pass_text.empty() ? preset->pass : pass_text;
  }
  if (user_text.empty()) {
    user_text = "{user}";
  }
  if (pass_text.empty()) {
    pass_text = "{pass}";
  }
  auto ut = compile_template(user_text);
  if (!ut.tpl) {
    return fail("user_template: " + ut.error);
  }
  auto pt = compile_template(pass_text);
  if (!pt.tpl) {
    return fail("pass_template: " + pt.error);
  }
  line->user_tpl = std::move(*ut.tpl);
  line->pass_tpl = std::move(*pt.tpl);
  if (user.empty() && line->uses(placeholder::user)) {
    return fail("a provider line needs the account's user in its URL (scheme://USER:PASS@host:port)");
  }
  if (std::any_of(user.begin(), user.end(), bad_credential_char) ||
      std::any_of(pass.begin(), pass.end(), bad_credential_char)) {
    return fail("provider credentials cannot carry ':', '@', '%' or control bytes (after percent-decoding)");
  }
  if (!keys.rotate.empty()) {
    const std::string v = lower(keys.rotate);
    if (v == "on" || v == "true" || v == "yes") {
      line->rotate = true;
    } else if (v == "off" || v == "false" || v == "no") {
      line->rotate = false;
    } else {
      return fail(fmt::format("bad rotate '{}' (want on or off)", clip(keys.rotate, 32)));
    }
  }
  if (line->rotate && !line->uses(placeholder::session)) {
    return fail(fmt::format(
        "template '{}' / '{}' has no {{session}}: rotation and sticky sessions need it (rotate=off lets the provider "
        "decide alone)",
        line->user_tpl.source, line->pass_tpl.source));
  }
  if (!keys.countries.empty()) {
    if (auto e = parse_list(keys.countries, "countries", line->any_country, line->countries); !e.empty()) {
      return fail(std::move(e));
    }
    if (!line->uses(placeholder::country)) {
      return fail("countries= needs a {country} in the template");
    }
  }
  if (!keys.cities.empty()) {
    if (auto e = parse_list(keys.cities, "cities", line->any_city, line->cities); !e.empty()) {
      return fail(std::move(e));
    }
    if (!line->uses(placeholder::city)) {
      return fail("cities= needs a {city} in the template");
    }
  }
  if (!keys.rate.empty()) {
    const auto [p, ec] = std::from_chars(keys.rate.data(), keys.rate.data() + keys.rate.size(), line->rate);
    if (ec != std::errc{} || p != keys.rate.data() + keys.rate.size() || !std::isfinite(line->rate) ||
        line->rate <= 0) {
      return fail(fmt::format("bad rate '{}' (want requests per second > 0)", clip(keys.rate, 32)));
    }
  }
  if (!keys.max_sessions.empty()) {
    const auto* end = keys.max_sessions.data() + keys.max_sessions.size();
    const auto [p, ec] = std::from_chars(keys.max_sessions.data(), end, line->max_sessions);
    if (ec != std::errc{} || p != end || line->max_sessions <= 0) {
      return fail(fmt::format("bad max_sessions '{}' (want an integer > 0)", clip(keys.max_sessions, 32)));
    }
  }
  line->source = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}", line->preset, line->user_tpl.source, line->pass_tpl.source,
                             keys.countries, keys.cities, line->rotate, line->rate, line->max_sessions);
  r.line = std::move(line);
  return r;
}

}  // namespace exitpool::proto
