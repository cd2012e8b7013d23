#pragma once
// SOCKS5 (RFC 1928) and its username/password sub-negotiation (RFC 1929):
// both the server side (what the gateway reads from clients) and the client
// side (what the gateway sends to socks5:// exits). Pure codecs, no I/O.
// Messages are byte strings held in std::string / std::string_view.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace exitpool::proto::socks5 {

inline constexpr std::uint8_t version = 0x05;

namespace method {
inline constexpr std::uint8_t no_auth = 0x00;
inline constexpr std::uint8_t userpass = 0x02;
inline constexpr std::uint8_t none_acceptable = 0xff;
}  // namespace method

enum class reply : std::uint8_t {
  succeeded = 0x00,
  general_failure = 0x01,
  not_allowed = 0x02,
  network_unreachable = 0x03,
  host_unreachable = 0x04,
  connection_refused = 0x05,
  ttl_expired = 0x06,
  command_not_supported = 0x07,
  address_type_not_supported = 0x08,
};
const char* describe(reply r);

namespace command {
inline constexpr std::uint8_t connect = 0x01;
inline constexpr std::uint8_t bind = 0x02;
inline constexpr std::uint8_t udp_associate = 0x03;
}  // namespace command

enum class status { complete, incomplete, error };

struct address {
  enum class kind : std::uint8_t { ipv4 = 0x01, domain = 0x03, ipv6 = 0x04 };
  kind type = kind::ipv4;
  std::string host;  // dotted IPv4, IPv6 text without brackets, or the domain name
  std::uint16_t port = 0;
};

// ---- server side ----
struct greeting_result {
  status st = status::incomplete;
  std::size_t consumed = 0;
  std::vector<std::uint8_t> methods;
  std::string error;
};
greeting_result parse_greeting(std::string_view buf);
std::string make_method_choice(std::uint8_t method);

struct userpass_result {
  status st = status::incomplete;
  std::size_t consumed = 0;
  std::string user;
  std::string pass;
  std::string error;
};
userpass_result parse_userpass(std::string_view buf);
std::string make_userpass_status(bool ok);

struct request_result {
  status st = status::incomplete;
  std::size_t consumed = 0;
  std::uint8_t cmd = 0;
  address dst;
  reply error_reply = reply::general_failure;  // on error: the reply code to send
  std::string error;
};
// Errors: bad version, non-zero reserved byte, unknown address type (reply 0x08),
// empty domain. An unsupported command parses fine: the caller answers 0x07.
request_result parse_request(std::string_view buf);
// `bound` of nullptr → 0.0.0.0:0
std::string make_reply(reply r, const address* bound = nullptr);

// ---- client side (toward a socks5:// exit) ----
std::string make_greeting(bool offer_userpass);
struct method_choice_result {
  status st = status::incomplete;
  std::size_t consumed = 0;
  std::uint8_t method = method::none_acceptable;
  std::string error;
};
method_choice_result parse_method_choice(std::string_view buf);
// Whether RFC 1929 can carry these credentials: a user name of 1..255 bytes and a
// password of 0..255 (an empty password is PLEN 0, as curl sends it and as
// parse_userpass accepts it). Pool lines are checked with it at load, provider
// credentials made for a request before any dial.
bool encodable_userpass(std::string_view user, std::string_view pass);
// Empty (no message) unless encodable_userpass: the encoders never throw (they run
// inside dials raced against a timer).
std::string make_userpass(std::string_view user, std::string_view pass);
struct auth_status_result {
  status st = status::incomplete;
  std::size_t consumed = 0;
  bool ok = false;
  std::string error;
};
auth_status_result parse_userpass_status(std::string_view buf);
// IP literals (v4 or v6, brackets optional) are sent as addresses; other hosts as a
// domain name (which is only valid toward socks5h:// exits — the caller resolves first
// for socks5://). Empty (no message) for a domain name that is not encodable_domain.
std::string make_connect(std::string_view host, std::uint16_t port);
// Whether `host` fits a SOCKS5 domain-name address: 1..255 bytes.
bool encodable_domain(std::string_view host);
struct reply_result {
  status st = status::incomplete;
  std::size_t consumed = 0;
  reply code = reply::general_failure;
  address bound;
  std::string error;
};
reply_result parse_reply(std::string_view buf);

}  // namespace exitpool::proto::socks5
