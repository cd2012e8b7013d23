#include "fetch/warc.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <chrono>
#include <ctime>
#include <stdexcept>

namespace exitpool::fetch {

namespace {

bool starts_with_icase(std::string_view line, std::string_view prefix) {
  if (line.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = line[i], b = prefix[i];
    a = static_cast<char>(a >= 'A' && a <= 'Z' ? a + 32 : a);
    b = static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
    if (a != b) {
      return false;
    }
  }
  return true;
}

// Calls f(line) for each line of `head` without its CRLF, stopping at the empty line.
template <class F>
void for_each_line(std::string_view head, F f) {
  while (!head.empty()) {
    auto nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      return;
    }
    f(line);
  }
}

}  // namespace

std::string warc_record_id(std::uint64_t a, std::uint64_t b) {
  a = (a & ~0xF000ULL) | 0x4000ULL;        // version 4
  b = (b & ~(3ULL << 62)) | (2ULL << 62);  // variant 10
  return fmt::format("<urn:uuid:{:08x}-{:04x}-{:04x}-{:04x}-{:012x}>", a >> 32, (a >> 16) & 0xFFFF, a & 0xFFFF, b >> 48,
                     b & 0xFFFFFFFFFFFFULL);
}

std::string warc_date_now() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now - secs).count();
  const std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

void append_warc_gz(std::string& out, const warc_record& r) {
  std::string text =
      "WARC/1.1\r\nWARC-Type: " + r.type + "\r\nWARC-Record-ID: " + r.record_id + "\r\nWARC-Date: " + r.date + "\r\n";
  if (!r.target_uri.empty()) {
    text += "WARC-Target-URI: " + r.target_uri + "\r\n";
  }
  if (!r.ip.empty()) {
    text += "WARC-IP-Address: " + r.ip + "\r\n";
  }
  if (!r.concurrent_to.empty()) {
    text += "WARC-Concurrent-To: " + r.concurrent_to + "\r\n";
  }
  text += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\n\r\n", r.content_type, r.block.size());
  text.append(r.block);
  text += "\r\n\r\n";

  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  const std::size_t old = out.size();
  out.resize(old + deflateBound(&zs, static_cast<uLong>(text.size())) + 64);
  zs.next_in = reinterpret_cast<Bytef*>(text.data());
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data() + old);
  zs.avail_out = static_cast<uInt>(out.size() - old);
  const int rc = deflate(&zs, Z_FINISH);
  const std::size_t produced = out.size() - old - zs.avail_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    throw std::runtime_error("deflate failed");
  }
  out.resize(old + produced);
}

std::string warc_request_head(std::string_view raw_head) {
  std::string out;
  for_each_line(raw_head, [&](std::string_view line) {
    if (!starts_with_icase(line, "proxy-authorization:")) {
      out.append(line);
      out += "\r\n";
    }
  });
  out += "\r\n";
  return out;
}

std::string warc_response_block(std::string_view raw_head, std::string_view body) {
  std::string out;
  bool has_length = false;
  bool chunked = false;
  for_each_line(raw_head, [&](std::string_view line) {
    if (starts_with_icase(line, "transfer-encoding:")) {
      chunked = true;
      return;
    }
    has_length = has_length || starts_with_icase(line, "content-length:");
    out.append(line);
    out += "\r\n";
  });
  if (!has_length || chunked) {
    out += fmt::format("Content-Length: {}\r\n", body.size());
  }
  out += "\r\n";
  out.append(body);
  return out;
}

}  // namespace exitpool::fetch
