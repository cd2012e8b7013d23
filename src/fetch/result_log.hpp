#pragma once
// The output file of `fetch`, which is also its checkpoint.
//
// The guarantee (see README "Resume"): a URL is done exactly when its line is in the
// output. On open, the existing file is scanned: every complete line's "url" goes
// into the done set; the first line that is not a complete JSON object (a torn write
// at kill -9, zeros after a power cut) and everything after it is cut off, and those
// URLs are fetched again. Lines are only ever appended as whole lines, and fsync'ed
// every `fsync_interval` by the caller (sync()).
//
// Threading: append() may be called from any shard; sync() from any thread.

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "fetch/url_set.hpp"

namespace exitpool::fetch {

struct scan_info {
  std::uint64_t lines = 0;                 // complete result lines kept
  std::uint64_t truncated_bytes = 0;       // bytes cut off the tail
  std::uint64_t warc_truncated_bytes = 0;  // bytes cut off the WARC (records without a line)
};

class result_log {
 public:
  // Opens (creating) `path` for appending. With `resume`, scans it first as described
  // above and inserts the fingerprint of every done URL into `done`; without, an
  // existing file is truncated. Throws std::runtime_error on I/O errors.
  //
  // With a `warc_path`, the WARC file is kept in step: a line's records are appended to
  // the WARC before the line itself, both under one lock (append_with_warc), and the
  // line says where they are (warc_offset, warc_length). On resume a line whose records
  // lie beyond the WARC's end counts as torn, and the WARC is cut after the records of
  // the last line kept: records of URLs without a line are dropped with them, so each
  // URL's records are in the WARC exactly once too. `warcinfo` is the block of the
  // warcinfo record written at the start of a new WARC.
  result_log(const std::string& path, bool resume, url_set& done, scan_info& info, const std::string& warc_path = {},
             const std::string& warcinfo = {});
  ~result_log();
  result_log(const result_log&) = delete;
  result_log& operator=(const result_log&) = delete;

  // Appends whole lines. Returns false on a write error (disk full...): fatal.
  bool append(std::string_view lines);
  // Appends `warc_bytes` (whole gzip members) to the WARC, then the line that
  // make_line(out, offset, length) appends to `out` for them, as one step. false on error.
  bool append_with_warc(std::string_view warc_bytes,
                        const std::function<void(std::string&, std::uint64_t, std::uint64_t)>& make_line);
  // fdatasync (both files). Returns false on error.
  bool sync();

 private:
  int fd_ = -1;
  int warc_fd_ = -1;
  std::uint64_t warc_size_ = 0;  // under write_mu_
  std::string path_;
  std::string line_;  // scratch for append_with_warc, under write_mu_
  // Held for one write(2) of a batch of whole lines (once per shard loop, not per
  // request): it lets a short write (ENOSPC, a signal) be completed without another
  // shard's batch landing in the middle of a line.
  std::mutex write_mu_;
};

}  // namespace exitpool::fetch
