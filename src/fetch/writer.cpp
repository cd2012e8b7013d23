#include "fetch/writer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

#include "fetch/warc.hpp"

namespace exitpool::fetch {

body_file write_body_file(const std::string& dir, std::uint64_t fp, std::string_view body) {
  body_file out;
  out.path = fmt::format("{}/{:016x}.body", dir, fp);
  const std::string tmp = out.path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0;
  std::string_view rest = body;
  while (ok && !rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    ok = n > 0;
    if (ok) {
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  if (fd >= 0) {
    ::close(fd);
  }
  out.ok = ok && ::rename(tmp.c_str(), out.path.c_str()) == 0;
  return out;
}

std::string warc_records(const warc_exchange& x, std::mt19937_64& rng) {
  const std::string date = warc_date_now();
  const std::string response_id = warc_record_id(rng(), rng());
  const std::string target(x.target_uri);
  std::string out;
  const std::string block = warc_response_block(x.raw_head, x.body);
  append_warc_gz(
      out, {"response", response_id, date, target, std::string(x.ip), "", "application/http;msgtype=response", block});
  if (!x.request_head.empty()) {
    const std::string req = warc_request_head(x.request_head);
    append_warc_gz(out, {"request", warc_record_id(rng(), rng()), date, target, "", response_id,
                         "application/http;msgtype=request", req});
  }
  return out;
}

bool line_writer::flush() {
  if (batch_.empty()) {
    return true;
  }
  const bool ok = log_.append(batch_);
  batch_.clear();
  return ok;
}

bool line_writer::add_with_warc(fetch_result& r, std::string_view warc_bytes) {
  return log_.append_with_warc(warc_bytes, [&r](std::string& line, std::uint64_t off, std::uint64_t len) {
    r.warc_offset = static_cast<std::int64_t>(off);
    r.warc_length = len;
    append_result_line(line, r);
  });
}

}  // namespace exitpool::fetch
