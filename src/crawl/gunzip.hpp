#pragma once
// Inflating a gzip sitemap (`--sitemaps`: a .xml.gz, or any sitemap body that starts with
// gzip's magic bytes 1f 8b, whatever its Content-Type) with a hard bound on the inflated
// size: sitemaps.org allows 50 MB (52,428,800 bytes) uncompressed, and a small gzip file can
// inflate to gigabytes (a "gzip bomb"), so inflating stops at the bound and says so: the
// output (a std::string growing by doubling) never holds more than twice the bound.
//
// Pure: bytes in, bytes and a status out (zlib, no I/O). Any thread.

#include <cstddef>
#include <string>
#include <string_view>

namespace exitpool::crawl {

inline constexpr std::size_t sitemap_max_bytes = 50 * 1024 * 1024;  // sitemaps.org: 50 MB uncompressed

enum class gunzip_status {
  ok,         // the whole stream (every member) inflated, within the bound
  not_gzip,   // no gzip magic at the start: not inflated
  truncated,  // the input ended inside the stream: `data` holds what came before
  too_large,  // inflating would pass the bound: `data` holds the first max_out bytes
  corrupt,    // bad header, bad deflate data or a bad checksum: `data` holds what came before
};

struct gunzip_result {
  gunzip_status status = gunzip_status::ok;
  std::string data;
  std::string error;  // why, for a log line (empty when ok)
};

// Does `body` start with gzip's magic bytes (1f 8b)?
bool is_gzip(std::string_view body);

// Inflates a gzip stream (members one after another, as gzip(1) writes them; bytes after
// the last member that are not another member are ignored, as gzip(1) does) into at most
// `max_out` bytes.
gunzip_result gunzip(std::string_view in, std::size_t max_out = sitemap_max_bytes);

const char* gunzip_status_name(gunzip_status s);

}  // namespace exitpool::crawl
