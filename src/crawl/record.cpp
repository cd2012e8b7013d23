#include "crawl/record.hpp"

#include <fmt/format.h>

#include <charconv>

#include "fetch/json_line.hpp"

namespace exitpool::crawl {

void append_page_record(std::string& out, const page_record& p) {
  fmt::format_to(std::back_inserter(out), ",\"depth\":{},\"links\":[", p.depth);
  for (std::size_t i = 0; i < p.links.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    fetch::append_json_string(out, p.links[i]);
  }
  out += ']';
  if (p.links_truncated) {
    out += ",\"links_truncated\":true";
  }
  if (!p.redirect.empty()) {
    out += ",\"redirect\":";
    fetch::append_json_string(out, p.redirect);
  }
  if (p.lease != 0) {
    fmt::format_to(std::back_inserter(out), ",\"lease\":{}", p.lease);
  }
}

std::optional<page_record> read_page_record(std::string_view line) {
  // Our members come last, and their keys cannot occur inside a JSON string (every '"'
  // there is escaped): the last occurrence is ours.
  constexpr std::string_view depth_key = ",\"depth\":";
  const auto at = line.rfind(depth_key);
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  page_record p;
  std::size_t pos = at + depth_key.size();
  const auto [end, ec] = std::from_chars(line.data() + pos, line.data() + line.size(), p.depth);
  if (ec != std::errc()) {
    return std::nullopt;
  }
  pos = static_cast<std::size_t>(end - line.data());
  constexpr std::string_view links_key = ",\"links\":[";
  if (line.substr(pos, links_key.size()) != links_key) {
    return std::nullopt;
  }
  pos += links_key.size();
  while (pos < line.size() && line[pos] != ']') {
    auto s = fetch::read_json_string(line, pos);
    if (!s) {
      return std::nullopt;
    }
    p.links.push_back(std::move(*s));
    if (pos < line.size() && line[pos] == ',') {
      ++pos;
    }
  }
  if (pos >= line.size()) {
    return std::nullopt;
  }
  ++pos;
  constexpr std::string_view trunc_key = ",\"links_truncated\":true";
  if (line.substr(pos, trunc_key.size()) == trunc_key) {
    p.links_truncated = true;
    pos += trunc_key.size();
  }
  constexpr std::string_view redirect_key = ",\"redirect\":";
  if (line.substr(pos, redirect_key.size()) == redirect_key) {
    pos += redirect_key.size();
    auto s = fetch::read_json_string(line, pos);
    if (!s) {
      return std::nullopt;
    }
    p.redirect = std::move(*s);
  }
  constexpr std::string_view lease_key = ",\"lease\":";
  if (line.substr(pos, lease_key.size()) == lease_key) {
    pos += lease_key.size();
    std::from_chars(line.data() + pos, line.data() + line.size(), p.lease);
  }
  return p;
}

}  // namespace exitpool::crawl
