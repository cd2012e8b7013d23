#pragma once
// Pool lists as providers hand them out (a file, or the answer of a list API), turned into
// exits with the defaults of the source they came from. Pure functions, no I/O: any thread.
// The lines themselves are parsed by proto/pool_line.hpp; this adds the JSON format, the
// source's defaults and the empty-list rule.
//
// The format is told by the first bytes that are not white space:
//   '{', or '[' then '"', '{' or ']'  JSON: an array, or an object holding the array under "data", "proxies", "list",
//               "items" or "result" (the first of these that is an array). Each item is
//                 - a string: one pool line (vendor "host:port[:user:pass]" included), or
//                 - an object with the fields
//                     host | ip | server | address      string (required)
//                     port                               number or digits (required)
//                     user | username | login            string
//                     pass | password                    string
//                     protocol | scheme | type*          http, https, socks5, socks5h ("socks" = socks5)
//                     country | country_code, city       string (lower-cased, like a pool line's)
//                     type                               string: the exit's type tag (isp, residential)
//                                                        *unless it names a protocol, as some APIs do
//                   any other field is ignored.
//   otherwise   pool lines, one exit per line (proto/pool_line.hpp), '#' comments.
//
// Source defaults (list_defaults) apply to every exit the list brings, each only where the
// exit has no value of its own: tag words (country=us type=isp tier=1 weight=2 any=tag), the
// scheme of bare "host:port[:user:pass]" lines and of JSON objects without a protocol, and a
// user:password pair for exits without credentials.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/pool_line.hpp"

namespace exitpool::proto {

enum class list_format { lines, json };
list_format detect_list_format(std::string_view text);

struct list_defaults {
  std::string tags;                   // key=value words, as on a pool line ("" = none)
  std::optional<exit_scheme> scheme;  // bare host:port lines, JSON objects without a protocol
  std::string user;                   // credentials for exits that have none ("" = none)
  std::string pass;
};

// "" when `d` is usable; else what is wrong with it (a bad tag word, id=, a direct scheme).
std::string check_list_defaults(const list_defaults& d);

// Parses a whole list named `name` (a file path, or a source's redacted URL). Throws
// pool_error: "NAME:LINE: message" for a bad line (as parse_pool_text), "NAME:LINE:COLUMN:
// invalid JSON: ..." for broken JSON, "NAME: item N: message" for a bad JSON item, and
// "NAME: empty list ..." for a list without exits unless `allow_empty` (then it returns none).
// Each exit's `line` is its line, or its item number in a JSON list.
std::vector<exit_spec> parse_pool_list(std::string_view text, std::string_view name, const list_defaults& d,
                                       bool allow_empty = false);

}  // namespace exitpool::proto
