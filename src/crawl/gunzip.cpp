#include "crawl/gunzip.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <climits>

namespace exitpool::crawl {

bool is_gzip(std::string_view body) {
  return body.size() >= 2 && static_cast<unsigned char>(body[0]) == 0x1f && static_cast<unsigned char>(body[1]) == 0x8b;
}

const char* gunzip_status_name(gunzip_status s) {
  switch (s) {
    case gunzip_status::ok:
      return "ok";
    case gunzip_status::not_gzip:
      return "not gzip";
    case gunzip_status::truncated:
      return "truncated";
    case gunzip_status::too_large:
      return "too large";
    case gunzip_status::corrupt:
      return "corrupt";
  }
  return "?";
}

gunzip_result gunzip(std::string_view in, std::size_t max_out) {
  gunzip_result r;
  if (!is_gzip(in)) {
    r.status = gunzip_status::not_gzip;
    r.error = "no gzip magic (1f 8b)";
    return r;
  }
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {  // 16: gzip wrapper only
    r.status = gunzip_status::corrupt;
    r.error = "inflateInit2 failed";
    return r;
  }
  // zlib counts in uInt: feed the input in pieces no larger than that.
  const auto* next = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t left = in.size();
  auto refill = [&] {
    if (zs.avail_in == 0 && left > 0) {
      const auto n = static_cast<uInt>(std::min<std::size_t>(left, UINT_MAX));
      zs.next_in = const_cast<unsigned char*>(next);  // zlib's API is not const; it does not write
      zs.avail_in = n;
      next += n;
      left -= n;
    }
  };
  // The output may reach max_out + 1 bytes: one byte past the bound says the stream goes on
  // (a stream of exactly max_out bytes is fine), and then the extra byte is cut.
  constexpr std::size_t chunk = 64 * 1024;
  for (;;) {
    refill();
    const std::size_t old = r.data.size();
    const std::size_t room = std::min(chunk, max_out + 1 - old);
    r.data.resize(old + room);
    zs.next_out = reinterpret_cast<unsigned char*>(r.data.data() + old);
    zs.avail_out = static_cast<uInt>(room);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    r.data.resize(old + room - zs.avail_out);
    if (r.data.size() > max_out) {
      r.data.resize(max_out);
      r.status = gunzip_status::too_large;
      r.error = fmt::format("inflates to more than {} bytes", max_out);
      break;
    }
    if (rc == Z_STREAM_END) {
      refill();
      if (zs.avail_in >= 2 && is_gzip({reinterpret_cast<const char*>(zs.next_in), 2})) {
        inflateReset(&zs);  // the next member
        continue;
      }
      break;  // done: trailing bytes that are not a member are ignored
    }
    if (rc == Z_OK) {
      continue;
    }
    // Z_BUF_ERROR with room left for output: the input ran out inside the stream.
    r.status = rc == Z_BUF_ERROR ? gunzip_status::truncated : gunzip_status::corrupt;
    r.error = rc == Z_BUF_ERROR ? "the gzip stream ends early" : (zs.msg != nullptr ? zs.msg : "inflate failed");
    break;
  }
  inflateEnd(&zs);
  return r;
}

}  // namespace exitpool::crawl
