#pragma once
// What a shard writes for a finished URL, besides counting it: its body file (--bodies),
// its WARC records (--warc) and its result line, batched per write (see result_log for
// the checkpoint rules). One shard's thread per writer; result_log serialises shards.

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "fetch/result.hpp"
#include "fetch/result_log.hpp"

namespace exitpool::fetch {

struct body_file {
  std::string path;  // DIR/<fingerprint>.body
  bool ok = false;   // false: not written (errno says why)
};

// --bodies: `body` written whole to a temporary file, then renamed into place.
body_file write_body_file(const std::string& dir, std::uint64_t fp, std::string_view body);

// One URL's last exchange, as the WARC records it.
struct warc_exchange {
  std::string_view target_uri;    // the final URL
  std::string_view ip;            // WARC-IP-Address (direct exits: the target's); empty: none
  std::string_view raw_head;      // response status line and headers, as received
  std::string_view body;          // as received (no content coding is asked for)
  std::string_view request_head;  // as sent to the target; empty: no request record
};

// The gzip members of a `response` record and, when the request head is known, a
// `request` record concurrent to it (record ids drawn from `rng`).
std::string warc_records(const warc_exchange& x, std::mt19937_64& rng);

// A shard's result lines: batched, then appended whole to the output.
class line_writer {
 public:
  explicit line_writer(result_log& log) : log_(log) {}

  void add(const fetch_result& r) { append_result_line(batch_, r); }
  std::size_t pending() const { return batch_.size(); }
  // Writes the batch. false: the output could not be written (errno).
  bool flush();
  // `r`'s line and its WARC records together, under the log's lock; call flush() first
  // to keep this shard's lines in order. Sets r.warc_offset/warc_length. false: the
  // output or the WARC could not be written (errno).
  bool add_with_warc(fetch_result& r, std::string_view warc_bytes);

 private:
  result_log& log_;
  std::string batch_;
};

}  // namespace exitpool::fetch
