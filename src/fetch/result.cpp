#include "fetch/result.hpp"

#include <fmt/format.h>

#include "fetch/json_line.hpp"
#include "proto/base64.hpp"

namespace exitpool::fetch {

namespace {
void append_ms(std::string& out, double v) {
  fmt::format_to(std::back_inserter(out), "{:.3f}", v);
}
}  // namespace

bool is_selected_header(std::string_view n) {
  return n == "content-type" || n == "content-length" || n == "location" || n == "retry-after" || n == "server";
}

void append_result_line(std::string& out, const fetch_result& r) {
  out += "{\"url\":";
  append_json_string(out, r.url);
  out += ",\"final_url\":";
  if (r.final_url.empty()) {
    out += "null";
  } else {
    append_json_string(out, r.final_url);
  }
  fmt::format_to(std::back_inserter(out), ",\"status\":{},\"headers\":{{", r.status);
  bool first = true;
  for (const auto& [k, v] : r.headers) {
    if (!first) {
      out += ',';
    }
    first = false;
    append_json_string(out, k);
    out += ':';
    append_json_string(out, v);
  }
  out += '}';
  if (!r.body_file.empty()) {
    out += ",\"body_file\":";
    append_json_string(out, r.body_file);
  } else if (r.inline_body) {
    if (valid_utf8(r.body)) {
      out += ",\"body\":";
      append_json_string(out, r.body);
    } else {
      out += ",\"body_base64\":\"";
      out += proto::base64_encode(r.body);
      out += '"';
    }
  }
  if (r.body_truncated) {
    out += ",\"body_truncated\":true";
  }
  fmt::format_to(std::back_inserter(out), ",\"body_size\":{}", r.body_size);
  out += ",\"exit\":";
  if (r.exit_id.empty()) {
    out += "null";
  } else {
    append_json_string(out, r.exit_id);
  }
  out += ",\"exit_ip\":";
  if (r.exit_ip.empty()) {
    out += "null";
  } else {
    append_json_string(out, r.exit_ip);
  }
  fmt::format_to(std::back_inserter(out), ",\"attempts\":{},\"timings\":{{\"dns\":", r.attempts);
  append_ms(out, r.timings.dns);
  out += ",\"connect\":";
  append_ms(out, r.timings.connect);
  out += ",\"tls\":";
  append_ms(out, r.timings.tls);
  out += ",\"ttfb\":";
  append_ms(out, r.timings.ttfb);
  out += ",\"total\":";
  append_ms(out, r.timings.total);
  out += "},\"error\":";
  if (r.error.empty()) {
    out += "null";
  } else {
    append_json_string(out, r.error);
  }
  if (r.warc_offset >= 0) {
    fmt::format_to(std::back_inserter(out), ",\"warc_offset\":{},\"warc_length\":{}", r.warc_offset, r.warc_length);
  }
  out += r.extra;
  out += "}\n";
}

}  // namespace exitpool::fetch
