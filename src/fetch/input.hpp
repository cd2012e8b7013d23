#pragma once
// The input side of `fetch`: a streaming line reader over a file or stdin, plain or
// gzip (told apart by the magic bytes, which zlib's gzread does for us), and the
// small URL facts the scheduler needs (host for sharding and politeness).
//
// Threading: a line_reader belongs to one thread (the input reader).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace exitpool::fetch {

class line_reader {
 public:
  // "-" is stdin. Throws std::runtime_error naming the file when it cannot be opened.
  explicit line_reader(const std::string& path);
  ~line_reader();
  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;

  // The next line without its "\n" (and without a trailing "\r"); nullopt at the end.
  // Throws on a read error (e.g. a corrupt gzip stream).
  std::optional<std::string_view> next();

 private:
  bool fill();
  void* gz_ = nullptr;  // gzFile
  std::string path_;
  std::string buf_;
  std::size_t pos_ = 0;
  bool eof_ = false;
};

// Lines in a plain (not gzip) regular file, counted fast; nullopt for stdin, pipes
// and gzip files (where counting would mean reading everything twice).
std::optional<std::uint64_t> count_lines(const std::string& path);

// Trims ASCII whitespace at both ends. Blank lines and lines starting with '#' are
// not URLs (the reader skips them).
std::string_view trim(std::string_view s);

struct url_parts {
  bool ok = false;  // http:// or https:// with a non-empty host
  bool https = false;
  std::string host;  // lower-case, without port or brackets
  std::uint16_t port = 0;
};
// A quick look at an absolute URL (no validation beyond what the scheduler needs;
// libcurl parses it for real).
url_parts parse_url(std::string_view url);

// 4 or 6 when `host` is an IPv4 or IPv6 literal (no brackets), 0 for a name.
int literal_family(const std::string& host);

}  // namespace exitpool::fetch
