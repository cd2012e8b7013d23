#pragma once
// Link extraction for the crawler: an HTML page's outgoing links, parsed with a real HTML5
// parser (Google's gumbo, Debian's libgumbo), resolved against the page's base and
// normalised (crawl/url_norm.hpp), each once, in document order.
//
//   - followed: a[href], area[href], link[href]; with `assets` also img[src], script[src];
//   - the document's first <base href> is the base (resolved against the page's URL);
//   - rel="nofollow" on the element, or <meta name="robots" content="nofollow|none">,
//     drops the link(s) unless `follow_nofollow`;
//   - bounded: only the first max_html bytes are parsed, and only up to where elements
//     nest deeper than max_depth (gumbo's time grows with depth x elements: 4 MiB of
//     nested <div> would take hours); at most max_links links are returned (`truncated`
//     says a bound was hit).
//
// Pure: bytes in, URLs out. Any thread.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "crawl/url_norm.hpp"

namespace exitpool::crawl {

struct link_options {
  bool follow_nofollow = false;
  bool assets = false;
  std::size_t max_links = 10000;
  std::size_t max_html = 4 * 1024 * 1024;
  std::size_t max_depth = 512;  // element nesting (see nesting_cut)
  normalize_options norm;
};

struct page_links {
  std::vector<std::string> links;  // normalised, each once
  std::string base;                // the base links were resolved against
  bool truncated = false;          // max_html or max_links was hit
  bool nofollow = false;           // <meta name="robots"> said nofollow
};

// `page_url` is the (normalised) URL the page was fetched from.
page_links extract_links(std::string_view html, std::string_view page_url, const link_options& o);

// Where `html` first nests elements deeper than `max_depth` (a cheap scan of tags: void
// elements, <x/>, and elements the next of their kind closes (p, li, td...) do not
// count); html.size() when it never does.
std::size_t nesting_cut(std::string_view html, std::size_t max_depth);

// The <loc> URLs of a sitemap (sitemaps.org XML: a urlset, or a sitemapindex whose
// entries are sitemaps: `index` says which), entities &amp; &lt; &gt; &quot; &apos;
// decoded, at most `max` (the protocol's limit is 50,000). XML text: a gzip sitemap is
// inflated first (crawl/gunzip.hpp).
std::vector<std::string> sitemap_locs(std::string_view xml, bool& index, std::size_t max = 50000);

// Does this Content-Type say HTML (text/html, application/xhtml+xml)? An absent one does
// not (we do not sniff).
bool is_html(std::string_view content_type);

}  // namespace exitpool::crawl
