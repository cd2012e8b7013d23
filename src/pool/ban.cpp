#include "pool/ban.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "pool/pool.hpp"
#include "pool/sticky.hpp"

namespace exitpool::pool {

// ---- ban_table --------------------------------------------------------------------------------

void ban_table::ban(const exit& e, std::string_view host, time_point until) {
  const std::uint64_t hh = hash64(host);
  map_.with_stripe(hh, [&](map_type::map_type& m) {
    // No `now` here: a full stripe then drops the bans ending soonest, expired ones first.
    auto [ent, inserted] = map_.upsert(m, exit_host_view{e.id_hash(), hh, host}, time_point::min());
    ent->expires = inserted ? until : std::max(ent->expires, until);
  });
}

bool ban_table::unban(const exit& e, std::string_view host) {
  const std::uint64_t hh = hash64(host);
  return map_.with_stripe(hh, [&](map_type::map_type& m) {
    auto it = m.find(exit_host_view{e.id_hash(), hh, host});
    if (it == m.end()) {
      return false;
    }
    m.erase(it);
    return true;
  });
}

bool ban_table::banned(const exit& e, std::string_view host, time_point now) const {
  return banned_until(e, host, now).has_value();
}

std::optional<time_point> ban_table::banned_until(const exit& e, std::string_view host, time_point now) const {
  const std::uint64_t eh = e.id_hash();
  time_point until = time_point::min();
  banned_until_many(host, hash64(host), std::span(&eh, 1), now, std::span(&until, 1));
  if (until == time_point::min()) {
    return std::nullopt;
  }
  return until;
}

void ban_table::banned_until_many(std::string_view host, std::uint64_t host_hash,
                                  std::span<const std::uint64_t> exit_hashes, time_point now,
                                  std::span<time_point> out) const {
  std::fill(out.begin(), out.end(), time_point::min());
  if (map_.stripe_empty(host_hash)) {
    return;  // the common case: no ban anywhere near this host, no lock
  }
  map_.with_stripe(host_hash, [&](const map_type::map_type& m) {
    for (std::size_t i = 0; i < exit_hashes.size(); ++i) {
      auto it = m.find(exit_host_view{exit_hashes[i], host_hash, host});
      if (it != m.end() && now < it->second.expires) {
        out[i] = it->second.expires;
      }
    }
  });
}

ban_index ban_table::bans_by_exit(time_point now) const {
  ban_index out;
  map_.for_each(now, [&](const exit_host_key& k, const map_type::entry& ent) {
    out[k.exit_hash].emplace_back(k.host, ent.expires);
  });
  for (auto& [exit_hash, bans] : out) {
    std::sort(bans.begin(), bans.end());
  }
  return out;
}

std::size_t ban_table::count(time_point now) const {
  std::size_t n = 0;
  map_.for_each(now, [&](const exit_host_key&, const map_type::entry&) { ++n; });
  return n;
}

// ---- Retry-After ------------------------------------------------------------------------------

namespace {

// A tiny cursor over the header value.
struct cursor {
  std::string_view s;

  bool done() const { return s.empty(); }
  bool lit(std::string_view want) {
    if (s.substr(0, want.size()) != want) {
      return false;
    }
    s.remove_prefix(want.size());
    return true;
  }
  // Exactly `n` digits (n > 0), or between 1 and `n` when `up_to`.
  std::optional<int> digits(std::size_t n, bool up_to = false) {
    std::size_t len = 0;
    while (len < s.size() && len < n && s[len] >= '0' && s[len] <= '9') {
      ++len;
    }
    if (len == 0 || (!up_to && len != n)) {
      return std::nullopt;
    }
    int v = 0;
    std::from_chars(s.data(), s.data() + len, v);
    s.remove_prefix(len);
    return v;
  }
  std::string_view word() {  // letters only
    std::size_t len = 0;
    while (len < s.size() && ((s[len] >= 'A' && s[len] <= 'Z') || (s[len] >= 'a' && s[len] <= 'z'))) {
      ++len;
    }
    auto w = s.substr(0, len);
    s.remove_prefix(len);
    return w;
  }
};

constexpr std::array<std::string_view, 7> day_names{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> long_day_names{"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                         "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

template <std::size_t N>
bool one_of(std::string_view w, const std::array<std::string_view, N>& names) {
  return std::find(names.begin(), names.end(), w) != names.end();
}

std::optional<unsigned> month_of(std::string_view w) {
  auto it = std::find(month_names.begin(), month_names.end(), w);
  if (it == month_names.end()) {
    return std::nullopt;
  }
  return static_cast<unsigned>(it - month_names.begin()) + 1;
}

struct civil {
  int year = 0;
  unsigned month = 0;
  unsigned day = 0;
  int hour = 0, minute = 0, second = 0;
};

bool time_of_day(cursor& c, civil& out) {
  auto h = c.digits(2);
  if (!h || !c.lit(":")) {
    return false;
  }
  auto m = c.digits(2);
  if (!m || !c.lit(":")) {
    return false;
  }
  auto sec = c.digits(2);
  if (!sec) {
    return false;
  }
  out.hour = *h;
  out.minute = *m;
  out.second = *sec;
  return out.hour < 24 && out.minute < 60 && out.second < 61;  // 60: leap second
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"; RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT";
// asctime: "Sun Nov  6 08:49:37 1994".
std::optional<civil> parse_http_date(std::string_view v) {
  cursor c{v};
  civil out;
  const auto day_name = c.word();
  if (c.lit(", ")) {
    if (one_of(day_name, day_names)) {  // IMF-fixdate
      auto d = c.digits(2);
      if (!d || !c.lit(" ")) {
        return std::nullopt;
      }
      auto mon = month_of(c.word());
      if (!mon || !c.lit(" ")) {
        return std::nullopt;
      }
      auto y = c.digits(4);
      if (!y || !c.lit(" ") || !time_of_day(c, out) || !c.lit(" GMT") || !c.done()) {
        return std::nullopt;
      }
      out.year = *y;
      out.month = *mon;
      out.day = static_cast<unsigned>(*d);
      return out;
    }
    if (one_of(day_name, long_day_names)) {  // RFC 850
      auto d = c.digits(2);
      if (!d || !c.lit("-")) {
        return std::nullopt;
      }
      auto mon = month_of(c.word());
      if (!mon || !c.lit("-")) {
        return std::nullopt;
      }
      auto y = c.digits(2);
      if (!y || !c.lit(" ") || !time_of_day(c, out) || !c.lit(" GMT") || !c.done()) {
        return std::nullopt;
      }
      // Two-digit years: RFC 9110 says a date more than 50 years ahead is in the past
      // century; with no calendar at hand, 70..99 -> 19xx, 00..69 -> 20xx.
      out.year = *y >= 70 ? 1900 + *y : 2000 + *y;
      out.month = *mon;
      out.day = static_cast<unsigned>(*d);
      return out;
    }
    return std::nullopt;
  }
  if (!one_of(day_name, day_names) || !c.lit(" ")) {  // asctime
    return std::nullopt;
  }
  auto mon = month_of(c.word());
  if (!mon || !c.lit(" ")) {
    return std::nullopt;
  }
  c.lit(" ");  // day is "SP DIGIT" or "2DIGIT"
  auto d = c.digits(2, true);
  if (!d || !c.lit(" ") || !time_of_day(c, out) || !c.lit(" ")) {
    return std::nullopt;
  }
  auto y = c.digits(4);
  if (!y || !c.done()) {
    return std::nullopt;
  }
  out.year = *y;
  out.month = *mon;
  out.day = static_cast<unsigned>(*d);
  return out;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
    v.remove_prefix(1);
  }
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
    v.remove_suffix(1);
  }
  return v;
}

}  // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now,
                                                      std::chrono::seconds cap) {
  using std::chrono::seconds;
  value = trim(value);
  if (value.empty()) {
    return std::nullopt;
  }
  const seconds limit = std::max(cap, seconds(0));
  if (std::all_of(value.begin(), value.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    // delta-seconds; an absurdly long number overflows: that is "very long", so cap it.
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec == std::errc::result_out_of_range || n > static_cast<std::uint64_t>(limit.count())) {
      return limit;
    }
    return seconds(static_cast<seconds::rep>(n));
  }
  auto date = parse_http_date(value);
  if (!date) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year(date->year), std::chrono::month(date->month),
                                        std::chrono::day(date->day)};
  if (!ymd.ok()) {
    return std::nullopt;
  }
  const auto at = std::chrono::sys_days(ymd) + std::chrono::hours(date->hour) + std::chrono::minutes(date->minute) +
                  seconds(date->second);
  const auto now_s = std::chrono::floor<seconds>(now);
  if (at <= now_s) {
    return seconds(0);
  }
  return std::min(std::chrono::duration_cast<seconds>(at - now_s), limit);
}

}  // namespace exitpool::pool
