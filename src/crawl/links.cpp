#include "crawl/links.hpp"

#include <gumbo.h>

#include <algorithm>
#include <memory>
#include <unordered_set>
#include <utility>

namespace exitpool::crawl {

namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

// Is `token` one of the whitespace-separated words of `list` (ASCII case-insensitive)?
bool has_token(std::string_view list, std::string_view token) {
  std::size_t i = 0;
  while (i < list.size()) {
    while (i < list.size() && (list[i] == ' ' || list[i] == '\t' || list[i] == '\n' || list[i] == '\r' ||
                               list[i] == '\f' || list[i] == ',')) {
      ++i;
    }
    const std::size_t start = i;
    while (i < list.size() && !(list[i] == ' ' || list[i] == '\t' || list[i] == '\n' || list[i] == '\r' ||
                                list[i] == '\f' || list[i] == ',')) {
      ++i;
    }
    const std::string_view word = list.substr(start, i - start);
    if (word.size() == token.size() &&
        std::equal(word.begin(), word.end(), token.begin(), [](char a, char b) { return lower(a) == lower(b); })) {
      return true;
    }
  }
  return false;
}

const char* attr(const GumboElement& e, const char* name) {
  const GumboAttribute* a = gumbo_get_attribute(&e.attributes, name);
  return a != nullptr ? a->value : nullptr;
}

struct output_deleter {
  void operator()(GumboOutput* out) const { gumbo_destroy_output(&kGumboDefaultOptions, out); }
};

// Elements that never hold others open (void), or that the next of their kind closes:
// not counted as nesting.
bool flat_element(std::string_view name) {
  static constexpr std::string_view names[] = {"area",   "base", "br",    "col",    "embed", "hr",  "img", "input",
                                               "link",   "meta", "param", "source", "track", "wbr", "p",   "li",
                                               "option", "td",   "th",    "tr",     "dt",    "dd"};
  for (auto n : names) {
    if (name.size() == n.size() &&
        std::equal(name.begin(), name.end(), n.begin(), [](char a, char b) { return lower(a) == lower(b); })) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::size_t nesting_cut(std::string_view html, std::size_t max_depth) {
  std::size_t depth = 0;
  for (std::size_t i = 0; i + 1 < html.size(); ++i) {
    if (html[i] != '<') {
      continue;
    }
    const bool end = html[i + 1] == '/';
    std::size_t j = i + (end ? 2 : 1);
    const std::size_t name_at = j;
    while (j < html.size() && ((html[j] >= 'a' && html[j] <= 'z') || (html[j] >= 'A' && html[j] <= 'Z') ||
                               (j > name_at && html[j] >= '0' && html[j] <= '9'))) {
      ++j;
    }
    if (j == name_at || flat_element(html.substr(name_at, j - name_at))) {
      continue;
    }
    if (end) {
      depth -= depth > 0 ? 1 : 0;
      continue;
    }
    const auto close = html.find('>', j);
    if (close != std::string_view::npos && close > 0 && html[close - 1] == '/') {
      continue;  // <x/>
    }
    if (++depth > max_depth) {
      return i;
    }
  }
  return html.size();
}

std::vector<std::string> sitemap_locs(std::string_view xml, bool& index, std::size_t max) {
  index = xml.find("<sitemapindex") != std::string_view::npos;
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (out.size() < max) {
    const auto open = xml.find("<loc>", pos);
    if (open == std::string_view::npos) {
      break;
    }
    const auto close = xml.find("</loc>", open + 5);
    if (close == std::string_view::npos) {
      break;
    }
    std::string v;
    const std::string_view raw = xml.substr(open + 5, close - open - 5);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      static constexpr std::pair<std::string_view, char> entities[] = {
          {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
      bool done = false;
      if (raw[i] == '&') {
        for (const auto& [e, c] : entities) {
          if (raw.substr(i, e.size()) == e) {
            v += c;
            i += e.size() - 1;
            done = true;
            break;
          }
        }
      }
      if (!done) {
        v += raw[i];
      }
    }
    out.push_back(std::move(v));
    pos = close + 6;
  }
  return out;
}

bool is_html(std::string_view ct) {
  std::string t;
  for (char c : ct.substr(0, ct.find(';'))) {
    if (c != ' ' && c != '\t') {
      t += lower(c);
    }
  }
  return t == "text/html" || t == "application/xhtml+xml";
}

page_links extract_links(std::string_view html, std::string_view page_url, const link_options& o) {
  page_links out;
  out.base = std::string(page_url);
  if (html.size() > o.max_html) {
    html = html.substr(0, o.max_html);
    out.truncated = true;
  }
  // The tree builder's scope checks walk the stack of open elements: time grows with
  // depth x elements. Past max_depth (browsers stop nesting at 512 too) the page is cut.
  if (const auto cut = nesting_cut(html, o.max_depth); cut < html.size()) {
    html = html.substr(0, cut);
    out.truncated = true;
  }
  GumboOptions opts = kGumboDefaultOptions;
  opts.max_errors = 16;  // parse errors are recorded in a list: keep it short
  std::unique_ptr<GumboOutput, output_deleter> doc(gumbo_parse_with_options(&opts, html.data(), html.size()));
  if (!doc) {
    return out;
  }
  // Raw references first (the base may come after some of them), bounded: a page of a
  // million links is read up to a multiple of what we keep.
  const std::size_t raw_cap = o.max_links * 4;
  std::vector<std::string_view> raw;
  bool base_seen = false;
  // Iterative walk: nesting depth is the document's to choose.
  std::vector<const GumboNode*> stack{doc->root};
  while (!stack.empty()) {
    const GumboNode* n = stack.back();
    stack.pop_back();
    if (n->type != GUMBO_NODE_ELEMENT && n->type != GUMBO_NODE_TEMPLATE) {
      continue;
    }
    const GumboElement& e = n->v.element;
    const char* ref = nullptr;
    switch (e.tag) {
      case GUMBO_TAG_BASE:
        if (const char* h = attr(e, "href"); h != nullptr && !base_seen) {
          base_seen = true;
          if (auto b = resolve_url(page_url, h, o.norm)) {
            out.base = std::move(*b);
          }
        }
        break;
      case GUMBO_TAG_META:
        if (const char* name = attr(e, "name"); name != nullptr && has_token(name, "robots")) {
          if (const char* content = attr(e, "content");
              content != nullptr && (has_token(content, "nofollow") || has_token(content, "none"))) {
            out.nofollow = true;
          }
        }
        break;
      case GUMBO_TAG_A:
      case GUMBO_TAG_AREA:
      case GUMBO_TAG_LINK:
        ref = attr(e, "href");
        if (ref != nullptr && !o.follow_nofollow) {
          if (const char* rel = attr(e, "rel"); rel != nullptr && has_token(rel, "nofollow")) {
            ref = nullptr;
          }
        }
        break;
      case GUMBO_TAG_IMG:
      case GUMBO_TAG_SCRIPT:
        ref = o.assets ? attr(e, "src") : nullptr;
        break;
      default:
        break;
    }
    if (ref != nullptr) {
      if (raw.size() < raw_cap) {
        raw.emplace_back(ref);
      } else {
        out.truncated = true;
      }
    }
    // Children in reverse, so they pop in document order.
    for (unsigned i = e.children.length; i > 0; --i) {
      stack.push_back(static_cast<const GumboNode*>(e.children.data[i - 1]));
    }
  }
  if (out.nofollow && !o.follow_nofollow) {
    out.links.clear();
    return out;
  }
  std::unordered_set<std::string> seen;
  for (std::string_view r : raw) {
    if (out.links.size() >= o.max_links) {
      out.truncated = true;
      break;
    }
    auto u = resolve_url(out.base, r, o.norm);
    if (u && seen.insert(*u).second) {
      out.links.push_back(std::move(*u));
    }
  }
  return out;
}

}  // namespace exitpool::crawl
