#pragma once
// Pool file codec: one exit per line. Pure functions, no I/O.
//
//   scheme://[user:pass@]host:port [key=value ...]     # comment
//   host:port[:user:pass] [key=value ...]              # vendor list format, means http://
//   direct://[ADDR] [key=value ...]                    # connect from local source ADDR
//   direct://[V6PREFIX]/LEN [key=value ...]            # from an address in the prefix (LEN 48..128),
//                                                      # one per connection (proto/ipv6_prefix.hpp)
//
// Schemes: http, https (TLS to the proxy), socks5 (gateway resolves names),
// socks5h (the exit resolves names), direct. user and pass are percent-decoded.
// Known keys: id, country, city, type, weight (> 0), tls_verify (true/false; also
// the bare word `insecure` = tls_verify=false). Any other key=value is kept as a tag.
// country/city/type values are lower-cased; keys are case-insensitive.
//
// Provider lines (proto/provider.hpp): an http, https, socks5 or socks5h URL with the
// account's credentials and `provider=NAME` and/or `user_template=` / `pass_template=`;
// then `countries=us,de|*`, `cities=...|*`, `rotate=on|off`, `rate=R`, `max_sessions=N`
// say what the line can target and bound the whole line. Such a line declares what it
// serves with countries=/cities= (country=/city= are an error there).

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/provider.hpp"

namespace exitpool::proto {

enum class exit_scheme { http, https, socks5, socks5h, direct };
const char* scheme_name(exit_scheme s);
// http:// and https:// exits are HTTP proxies: a forwarded request goes to them in
// absolute form with their own Proxy-Authorization, and a connection to one does not
// depend on the target. Direct and SOCKS exits connect to the target itself.
constexpr bool is_http_proxy_scheme(exit_scheme s) {
  return s == exit_scheme::http || s == exit_scheme::https;
}

struct exit_spec {
  exit_scheme scheme = exit_scheme::direct;
  std::string host;        // proxy host, or the source address for direct ("" = default route)
  std::uint16_t port = 0;  // 0 for direct
  // direct only: > 0 when `host` is the network address of an IPv6 prefix of this length;
  // each connection then leaves from an address inside it. One exit for health, policy, metrics.
  int prefix_len = 0;
  std::string user;
  std::string pass;
  std::string id;       // explicit id=, else derived (see default_exit_id)
  std::string country;  // lower-case, "" = untagged
  std::string city;
  std::string type;
  double weight = 1.0;
  bool tls_verify = true;                                 // https:// only
  std::vector<std::pair<std::string, std::string>> tags;  // other key=value, in order
  std::size_t line = 0;                                   // line number in its file, 0 when not from a file
  // Set for a provider line: the exit is elastic, a family of virtual exits (pool/elastic.hpp).
  std::shared_ptr<const provider_line> provider;
};

// "host:port" for proxies, "user@host:port" when a user is set,
// "direct:ADDR", "direct:PREFIX/LEN" or "direct" for direct exits.
std::string default_exit_id(const exit_spec& spec);

// "scheme://user:***@host:port" — never prints the password.
std::string redacted_url(const exit_spec& spec);

struct pool_line_result {
  std::optional<exit_spec> spec;  // empty for blank lines and comments, and on error
  std::string error;              // non-empty on error: what is wrong, with the offending text
};
pool_line_result parse_pool_line(std::string_view line);

// Thrown by parse_pool_text: what() is "FILE:LINE: message".
class pool_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How parse_pool_text may split a big text: into up to `threads` runs of whole lines,
// each at least `min_bytes_per_thread` long, parsed in parallel (the calling thread
// takes the first). The result and the errors do not depend on the split.
struct parse_options {
  unsigned threads = 2;
  std::size_t min_bytes_per_thread = std::size_t{4} << 20;
};

// Parses a whole file. Errors (bad line, duplicate id, no exits at all) throw
// pool_error naming `filename` and the line number: the first in file order.
// Any thread; it may start opts.threads - 1 threads of its own for a big text.
std::vector<exit_spec> parse_pool_text(std::string_view text, std::string_view filename,
                                       const parse_options& opts = {});

}  // namespace exitpool::proto
