#pragma once
// What `crawl` adds to a page's result line, and reads back from it on resume:
//   ..., "depth":2, "links":["http://a.test/x", ...], "links_truncated":true,
//   "redirect":"http://a.test/y", "lease":N}   (lease: with --frontier; a restarted worker
//   acknowledges the leases of the lines it finds, so they are not fetched again)
// `links` are the page's in-scope outgoing links (normalised, each once); `redirect` the
// normalised Location of a 3xx. The output is the crawl's checkpoint: a URL is done when
// its line is there, and the lines' links are the frontier to rebuild after a kill.
//
// Pure. Any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exitpool::crawl {

struct page_record {
  std::uint32_t depth = 0;
  std::vector<std::string> links;
  bool links_truncated = false;
  std::string redirect;     // empty: none
  std::uint64_t lease = 0;  // with --frontier: the lease the page was fetched under (0: none)
};

// Appends the members (each with its leading comma) to `out`.
void append_page_record(std::string& out, const page_record& p);

// The members of a result line written with append_page_record; nullopt when the line
// has none (a line of fetch, or damaged).
std::optional<page_record> read_page_record(std::string_view line);

}  // namespace exitpool::crawl
