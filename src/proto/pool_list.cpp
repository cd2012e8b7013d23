#include "proto/pool_list.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <unordered_map>

#include "proto/text.hpp"

namespace exitpool::proto {

namespace json = boost::json;

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) {
    s.remove_prefix(1);
  }
  return s;
}

// The words of a line before its comment ('#' at the start of a word), as the line parser splits them.
std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_blank(line[i])) {
      ++i;
    }
    if (i >= line.size() || line[i] == '#') {
      break;
    }
    const std::size_t start = i;
    while (i < line.size() && !is_blank(line[i])) {
      ++i;
    }
    out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool has_key(const std::vector<std::string_view>& words, std::string_view key) {
  return std::any_of(words.begin() + (words.empty() ? 0 : 1), words.end(), [key](std::string_view w) {
    const auto eq = w.find('=');
    return eq != std::string_view::npos && lower(w.substr(0, eq)) == key;
  });
}

// A line that is neither blank nor a comment.
bool has_exit_line(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      nl = text.size();
    }
    const auto line = trim_left(text.substr(pos, nl - pos));
    if (!line.empty() && line.front() != '#') {
      return true;
    }
    pos = nl + 1;
  }
  return false;
}

// The defaults, parsed once: the tag words as a pool line's keys.
struct defaults {
  const list_defaults& given;
  exit_spec tagged;
  bool weight = false;  // the tags set a weight
  bool insecure = false;
};

pool_line_result parse_tags(std::string_view tags) {
  return parse_pool_line("direct:// " + std::string(tags));
}

defaults prepare(const list_defaults& d) {
  defaults out{d, {}, false, false};
  if (!d.tags.empty()) {
    out.tagged = *parse_tags(d.tags).spec;  // check_list_defaults ran first
    out.weight = has_key(words_of("x " + d.tags), "weight");
    out.insecure = !out.tagged.tls_verify;
  }
  return out;
}

bool nothing_to_apply(const list_defaults& d) {
  return d.tags.empty() && !d.scheme && d.user.empty();
}

// `bare`: the exit came as host:port[:user:pass] (or a JSON object without a protocol);
// `own_weight`: it set its own weight.
void apply(const defaults& d, exit_spec& e, bool bare, bool own_weight) {
  const bool derived_id = e.id == default_exit_id(e);
  if (bare && d.given.scheme) {
    e.scheme = *d.given.scheme;
  }
  if (e.user.empty() && !d.given.user.empty() && e.scheme != exit_scheme::direct) {
    e.user = d.given.user;
    e.pass = d.given.pass;
  }
  if (derived_id) {
    e.id = default_exit_id(e);
  }
  if (e.country.empty()) {
    e.country = d.tagged.country;
  }
  if (e.city.empty()) {
    e.city = d.tagged.city;
  }
  if (e.type.empty()) {
    e.type = d.tagged.type;
  }
  if (d.weight && !own_weight) {
    e.weight = d.tagged.weight;
  }
  if (d.insecure) {
    e.tls_verify = false;
  }
  for (const auto& tag : d.tagged.tags) {
    const auto& key = tag.first;
    const bool own = std::any_of(e.tags.begin(), e.tags.end(), [&key](const auto& t) { return t.first == key; });
    if (!own) {
      e.tags.push_back(tag);
    }
  }
}

bool bare_line(std::string_view line) {
  const auto words = words_of(line);
  return !words.empty() && words.front().find("://") == std::string_view::npos;
}

std::vector<exit_spec> parse_lines(std::string_view text, std::string_view name, const list_defaults& given) {
  auto exits = parse_pool_text(text, name);
  if (nothing_to_apply(given)) {
    return exits;
  }
  // Where each line starts, for the per-line facts the defaults need (bare line, own weight).
  std::vector<std::size_t> starts{0};
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      starts.push_back(i + 1);
    }
  }
  const auto d = prepare(given);
  for (auto& e : exits) {
    const std::size_t begin = starts[e.line - 1];
    const std::size_t end = e.line < starts.size() ? starts[e.line] : text.size();
    const auto line = text.substr(begin, end - begin);
    apply(d, e, bare_line(line), has_key(words_of(line), "weight"));
  }
  return exits;
}

// ---- JSON ----

std::string line_col(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  const auto before = text.substr(0, offset);
  const auto lines = static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
  const auto last_nl = before.rfind('\n');
  const std::size_t col = last_nl == std::string_view::npos ? offset + 1 : offset - last_nl;
  return fmt::format("{}:{}", lines + 1, col);
}

json::value parse_json(std::string_view text, std::string_view name) {
  json::stream_parser p;
  boost::system::error_code ec;
  const std::size_t used = p.write(text.data(), text.size(), ec);
  if (!ec) {
    p.finish(ec);
  }
  if (ec) {
    throw pool_error(fmt::format("{}:{}: invalid JSON: {}", name, line_col(text, used), ec.message()));
  }
  return p.release();
}

const json::array* item_array(const json::value& v) {
  if (const auto* arr = v.if_array()) {
    return arr;
  }
  if (const auto* obj = v.if_object()) {
    for (const char* key : {"data", "proxies", "list", "items", "result"}) {
      if (const auto* it = obj->if_contains(key); it != nullptr && it->is_array()) {
        return &it->as_array();
      }
    }
  }
  return nullptr;
}

// The first of `keys` that `obj` has as a string (or, with `numbers`, as an integer).
std::optional<std::string> field(const json::object& obj, std::initializer_list<const char*> keys,
                                 bool numbers = false) {
  for (const char* key : keys) {
    const auto* v = obj.if_contains(key);
    if (v == nullptr || v->is_null()) {
      continue;
    }
    if (const auto* s = v->if_string()) {
      return std::string(s->data(), s->size());
    }
    if (numbers && v->is_int64()) {
      return std::to_string(v->as_int64());
    }
    if (numbers && v->is_uint64()) {
      return std::to_string(v->as_uint64());
    }
    throw std::invalid_argument(fmt::format("field '{}' must be a {}", key, numbers ? "number or a string" : "string"));
  }
  return std::nullopt;
}

std::optional<std::string> protocol_name(std::string_view p) {
  const auto l = lower(p);
  if (l == "socks") {
    return "socks5";
  }
  if (l == "http" || l == "https" || l == "socks5" || l == "socks5h") {
    return l;
  }
  return std::nullopt;
}

// One JSON object as an exit (bare: no protocol of its own). Throws std::invalid_argument.
exit_spec object_exit(const json::object& obj, bool& bare) {
  const auto host = field(obj, {"host", "ip", "server", "address"});
  const auto port = field(obj, {"port"}, true);
  if (!host || host->empty()) {
    throw std::invalid_argument("no host (host, ip, server or address)");
  }
  if (!port) {
    throw std::invalid_argument("no port");
  }
  auto type = field(obj, {"type"});
  auto protocol = field(obj, {"protocol", "scheme"});
  if (!protocol && type && protocol_name(*type)) {
    protocol.swap(type);  // "type": "socks5" names the protocol, not a tag
  }
  std::string scheme = "http";
  bare = !protocol;
  if (protocol) {
    auto name = protocol_name(*protocol);
    if (!name) {
      throw std::invalid_argument(
          fmt::format("unknown protocol '{}' (http, https, socks5, socks5h)", clip(*protocol, 32)));
    }
    scheme = *name;
  }
  std::string url = scheme + "://";
  const auto user = field(obj, {"user", "username", "login"});
  const auto pass = field(obj, {"pass", "password"});
  if (user && !user->empty()) {
    url += percent_encode(*user);
    if (pass) {
      url += ':' + percent_encode(*pass);
    }
    url += '@';
  }
  url += host->find(':') != std::string::npos ? "[" + *host + "]" : *host;
  url += ':' + *port;
  auto parsed = parse_pool_line(url);
  if (!parsed.spec) {
    throw std::invalid_argument(parsed.error);
  }
  exit_spec e = std::move(*parsed.spec);
  if (auto v = field(obj, {"country", "country_code"})) {
    e.country = lower(*v);
  }
  if (auto v = field(obj, {"city"})) {
    e.city = lower(*v);
  }
  if (type) {
    e.type = lower(*type);
  }
  return e;
}

std::vector<exit_spec> parse_json_list(std::string_view text, std::string_view name, const list_defaults& given,
                                       bool allow_empty) {
  const auto doc = parse_json(text, name);
  const auto* items = item_array(doc);
  if (items == nullptr) {
    throw pool_error(fmt::format(
        "{}: JSON without a list of exits (an array, or one under \"data\", \"proxies\", \"list\", \"items\" "
        "or \"result\")",
        name));
  }
  const auto d = prepare(given);
  std::vector<exit_spec> exits;
  exits.reserve(items->size());
  std::unordered_map<std::string, std::size_t> first_item;  // id → item number
  for (std::size_t i = 0; i < items->size(); ++i) {
    const std::size_t n = i + 1;
    const auto& item = (*items)[i];
    exit_spec e;
    bool bare = false;
    try {
      if (const auto* s = item.if_string()) {
        const std::string_view line(s->data(), s->size());
        auto parsed = parse_pool_line(line);
        if (!parsed.error.empty()) {
          throw std::invalid_argument(parsed.error);
        }
        if (!parsed.spec) {
          continue;  // blank or a comment
        }
        e = std::move(*parsed.spec);
        bare = bare_line(line);
        apply(d, e, bare, has_key(words_of(line), "weight"));
      } else if (const auto* obj = item.if_object()) {
        e = object_exit(*obj, bare);
        apply(d, e, bare, false);
      } else {
        throw std::invalid_argument("expected a string (a pool line) or an object");
      }
    } catch (const std::invalid_argument& ex) {
      throw pool_error(fmt::format("{}: item {}: {}", name, n, ex.what()));
    }
    e.line = n;
    const auto [it, fresh] = first_item.emplace(e.id, n);
    if (!fresh) {
      throw pool_error(fmt::format("{}: item {}: duplicate id '{}' (first in item {})", name, n, e.id, it->second));
    }
    exits.push_back(std::move(e));
  }
  if (exits.empty() && !allow_empty) {
    throw pool_error(fmt::format("{}: empty list (no exits in the JSON)", name));
  }
  return exits;
}

}  // namespace

list_format detect_list_format(std::string_view text) {
  const auto t = trim_left(text);
  if (t.empty()) {
    return list_format::lines;
  }
  if (t.front() == '{') {
    return list_format::json;
  }
  // '[' also starts a vendor line with an IPv6 address ("[::1]:3128:u:p"): an array's first
  // item is a string or an object, or the array is empty.
  const auto next = trim_left(t.substr(1));
  return t.front() == '[' && (next.empty() || next.front() == '"' || next.front() == '{' || next.front() == ']')
             ? list_format::json
             : list_format::lines;
}

std::string check_list_defaults(const list_defaults& d) {
  if (d.scheme == exit_scheme::direct) {
    return "the default scheme of bare host:port lines must be http, https, socks5 or socks5h";
  }
  if (d.tags.empty()) {
    return {};
  }
  auto parsed = parse_tags(d.tags);
  if (!parsed.spec) {
    return fmt::format("tags '{}': {}", clip(d.tags), parsed.error.empty() ? "no tags" : parsed.error);
  }
  if (parsed.spec->id != default_exit_id(*parsed.spec)) {
    return fmt::format("tags '{}': id= names one exit, it cannot be a default for a whole list", clip(d.tags));
  }
  return {};
}

std::vector<exit_spec> parse_pool_list(std::string_view text, std::string_view name, const list_defaults& d,
                                       bool allow_empty) {
  if (detect_list_format(text) == list_format::json) {
    return parse_json_list(text, name, d, allow_empty);
  }
  if (!has_exit_line(text)) {
    if (allow_empty) {
      return {};
    }
    throw pool_error(fmt::format("{}: empty list (no exits: {})", name,
                                 trim_left(text).empty() ? "no text at all" : "only comments"));
  }
  return parse_lines(text, name, d);
}

}  // namespace exitpool::proto
