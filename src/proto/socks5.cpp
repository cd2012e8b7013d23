#include "proto/socks5.hpp"

#include <arpa/inet.h>

#include <array>

namespace exitpool::proto::socks5 {

bool encodable_domain(std::string_view host) {
  return !host.empty() && host.size() <= 255;
}

namespace {

constexpr std::uint8_t userpass_version = 0x01;

std::uint8_t byte_at(std::string_view buf, std::size_t i) {
  return static_cast<std::uint8_t>(buf[i]);
}

void put_port(std::string& out, std::uint16_t port) {
  out.push_back(static_cast<char>(port >> 8));
  out.push_back(static_cast<char>(port & 0xff));
}

bool parse_ipv4(std::string_view s, std::array<unsigned char, 4>& out) {
  if (s.empty() || s.size() >= INET_ADDRSTRLEN) {
    return false;
  }
  std::array<char, INET_ADDRSTRLEN> text{};
  s.copy(text.data(), s.size());
  return inet_pton(AF_INET, text.data(), out.data()) == 1;
}

bool parse_ipv6(std::string_view s, std::array<unsigned char, 16>& out) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) {
    return false;
  }
  std::array<char, INET6_ADDRSTRLEN> text{};
  s.copy(text.data(), s.size());
  return inet_pton(AF_INET6, text.data(), out.data()) == 1;
}

// Encodes ATYP, the address and the port; false (nothing useful appended) for a domain
// name that cannot be encoded.
bool put_address(std::string& out, std::string_view host, std::uint16_t port) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::array<unsigned char, 4> v4{};
  std::array<unsigned char, 16> v6{};
  if (parse_ipv4(host, v4)) {
    out.push_back(static_cast<char>(address::kind::ipv4));
    out.append(reinterpret_cast<const char*>(v4.data()), v4.size());
  } else if (parse_ipv6(host, v6)) {
    out.push_back(static_cast<char>(address::kind::ipv6));
    out.append(reinterpret_cast<const char*>(v6.data()), v6.size());
  } else {
    if (!encodable_domain(host)) {
      return false;
    }
    out.push_back(static_cast<char>(address::kind::domain));
    out.push_back(static_cast<char>(host.size()));
    out.append(host);
  }
  put_port(out, port);
  return true;
}

struct address_parse {
  status st = status::incomplete;
  std::size_t end = 0;  // offset just past the port
  address addr;
  reply error_reply = reply::general_failure;
  std::string error;
};

// Parses ATYP, address and port starting at `at`.
address_parse parse_address(std::string_view buf, std::size_t at) {
  address_parse r;
  if (buf.size() <= at) {
    return r;
  }
  const std::uint8_t atyp = byte_at(buf, at);
  std::size_t addr_len = 0;
  std::size_t addr_at = at + 1;
  switch (atyp) {
    case static_cast<std::uint8_t>(address::kind::ipv4):
      addr_len = 4;
      break;
    case static_cast<std::uint8_t>(address::kind::ipv6):
      addr_len = 16;
      break;
    case static_cast<std::uint8_t>(address::kind::domain):
      if (buf.size() <= at + 1) {
        return r;
      }
      addr_len = byte_at(buf, at + 1);
      addr_at = at + 2;
      if (addr_len == 0) {
        r.st = status::error;
        r.error = "empty domain name";
        return r;
      }
      break;
    default:
      r.st = status::error;
      r.error_reply = reply::address_type_not_supported;
      r.error = "unknown address type " + std::to_string(atyp);
      return r;
  }
  if (buf.size() < addr_at + addr_len + 2) {
    return r;
  }
  const std::string_view raw = buf.substr(addr_at, addr_len);
  r.addr.type = static_cast<address::kind>(atyp);
  if (r.addr.type == address::kind::domain) {
    for (char c : raw) {
      const auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u == 0x7f) {
        r.st = status::error;
        r.error = "invalid byte in domain name";
        return r;
      }
    }
    r.addr.host = std::string(raw);
  } else {
    std::array<char, INET6_ADDRSTRLEN> text{};
    const int family = r.addr.type == address::kind::ipv4 ? AF_INET : AF_INET6;
    if (inet_ntop(family, raw.data(), text.data(), static_cast<socklen_t>(text.size())) == nullptr) {
      r.st = status::error;
      r.error = "bad address";
      return r;
    }
    r.addr.host = text.data();
  }
  r.addr.port =
      static_cast<std::uint16_t>((byte_at(buf, addr_at + addr_len) << 8) | byte_at(buf, addr_at + addr_len + 1));
  r.end = addr_at + addr_len + 2;
  r.st = status::complete;
  return r;
}

}  // namespace

const char* describe(reply r) {
  switch (r) {
    case reply::succeeded:
      return "succeeded";
    case reply::general_failure:
      return "general SOCKS server failure";
    case reply::not_allowed:
      return "connection not allowed by ruleset";
    case reply::network_unreachable:
      return "network unreachable";
    case reply::host_unreachable:
      return "host unreachable";
    case reply::connection_refused:
      return "connection refused";
    case reply::ttl_expired:
      return "TTL expired";
    case reply::command_not_supported:
      return "command not supported";
    case reply::address_type_not_supported:
      return "address type not supported";
  }
  return "unknown reply code";
}

// ---- server side ----

greeting_result parse_greeting(std::string_view buf) {
  greeting_result r;
  if (buf.empty()) {
    return r;
  }
  if (byte_at(buf, 0) != version) {
    r.st = status::error;
    r.error = "not SOCKS version 5";
    return r;
  }
  if (buf.size() < 2) {
    return r;
  }
  const std::size_t n = byte_at(buf, 1);
  if (n == 0) {
    r.st = status::error;
    r.error = "greeting offers no methods";
    return r;
  }
  if (buf.size() < 2 + n) {
    return r;
  }
  r.methods.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    r.methods.push_back(byte_at(buf, 2 + i));
  }
  r.consumed = 2 + n;
  r.st = status::complete;
  return r;
}

std::string make_method_choice(std::uint8_t m) {
  return std::string{static_cast<char>(version), static_cast<char>(m)};
}

userpass_result parse_userpass(std::string_view buf) {
  userpass_result r;
  if (buf.empty()) {
    return r;
  }
  if (byte_at(buf, 0) != userpass_version) {
    r.st = status::error;
    r.error = "bad username/password version";
    return r;
  }
  if (buf.size() < 2) {
    return r;
  }
  const std::size_t ulen = byte_at(buf, 1);
  if (ulen == 0) {
    r.st = status::error;
    r.error = "empty username";
    return r;
  }
  if (buf.size() < 2 + ulen + 1) {
    return r;
  }
  const std::size_t plen = byte_at(buf, 2 + ulen);
  if (buf.size() < 3 + ulen + plen) {
    return r;
  }
  r.user = std::string(buf.substr(2, ulen));
  r.pass = std::string(buf.substr(3 + ulen, plen));
  r.consumed = 3 + ulen + plen;
  r.st = status::complete;
  return r;
}

std::string make_userpass_status(bool ok) {
  return std::string{static_cast<char>(userpass_version), static_cast<char>(ok ? 0x00 : 0x01)};
}

request_result parse_request(std::string_view buf) {
  request_result r;
  if (buf.empty()) {
    return r;
  }
  if (byte_at(buf, 0) != version) {
    r.st = status::error;
    r.error = "not SOCKS version 5";
    return r;
  }
  if (buf.size() < 2) {
    return r;
  }
  r.cmd = byte_at(buf, 1);
  if (buf.size() < 3) {
    return r;
  }
  if (byte_at(buf, 2) != 0) {
    r.st = status::error;
    r.error = "non-zero reserved byte";
    return r;
  }
  address_parse a = parse_address(buf, 3);
  if (a.st == status::error) {
    r.st = status::error;
    r.error_reply = a.error_reply;
    r.error = std::move(a.error);
    return r;
  }
  if (a.st == status::incomplete) {
    return r;
  }
  r.dst = std::move(a.addr);
  r.consumed = a.end;
  r.st = status::complete;
  return r;
}

std::string make_reply(reply code, const address* bound) {
  std::string out{static_cast<char>(version), static_cast<char>(code), 0x00};
  if (bound == nullptr) {
    out.push_back(static_cast<char>(address::kind::ipv4));
    out.append(4, '\0');
    put_port(out, 0);
    return out;
  }
  if (bound->type == address::kind::domain) {
    const std::size_t n = bound->host.size() > 255 ? 255 : bound->host.size();
    out.push_back(static_cast<char>(address::kind::domain));
    out.push_back(static_cast<char>(n));
    out.append(bound->host, 0, n);
    put_port(out, bound->port);
    return out;
  }
  std::array<unsigned char, 4> v4{};
  std::array<unsigned char, 16> v6{};
  if (bound->type == address::kind::ipv6 && parse_ipv6(bound->host, v6)) {
    out.push_back(static_cast<char>(address::kind::ipv6));
    out.append(reinterpret_cast<const char*>(v6.data()), v6.size());
  } else {
    // An unparsable IPv4 text falls back to 0.0.0.0: a reply must always be well-formed.
    parse_ipv4(bound->host, v4);
    out.push_back(static_cast<char>(address::kind::ipv4));
    out.append(reinterpret_cast<const char*>(v4.data()), v4.size());
  }
  put_port(out, bound->port);
  return out;
}

// ---- client side ----

std::string make_greeting(bool offer_userpass) {
  if (offer_userpass) {
    return std::string{static_cast<char>(version), 0x02, static_cast<char>(method::no_auth),
                       static_cast<char>(method::userpass)};
  }
  return std::string{static_cast<char>(version), 0x01, static_cast<char>(method::no_auth)};
}

method_choice_result parse_method_choice(std::string_view buf) {
  method_choice_result r;
  if (buf.empty()) {
    return r;
  }
  if (byte_at(buf, 0) != version) {
    r.st = status::error;
    r.error = "not SOCKS version 5";
    return r;
  }
  if (buf.size() < 2) {
    return r;
  }
  r.method = byte_at(buf, 1);
  r.consumed = 2;
  r.st = status::complete;
  return r;
}

bool encodable_userpass(std::string_view user, std::string_view pass) {
  return !user.empty() && user.size() <= 255 && pass.size() <= 255;
}

std::string make_userpass(std::string_view user, std::string_view pass) {
  if (!encodable_userpass(user, pass)) {
    return {};
  }
  std::string out;
  out.reserve(3 + user.size() + pass.size());
  out.push_back(static_cast<char>(userpass_version));
  out.push_back(static_cast<char>(user.size()));
  out.append(user);
  out.push_back(static_cast<char>(pass.size()));
  out.append(pass);
  return out;
}

auth_status_result parse_userpass_status(std::string_view buf) {
  auth_status_result r;
  if (buf.empty()) {
    return r;
  }
  // RFC 1929 says version 1; some servers answer with 5, which is harmless to accept.
  const std::uint8_t ver = byte_at(buf, 0);
  if (ver != userpass_version && ver != version) {
    r.st = status::error;
    r.error = "bad username/password status version";
    return r;
  }
  if (buf.size() < 2) {
    return r;
  }
  r.ok = byte_at(buf, 1) == 0;
  r.consumed = 2;
  r.st = status::complete;
  return r;
}

std::string make_connect(std::string_view host, std::uint16_t port) {
  std::string out{static_cast<char>(version), static_cast<char>(command::connect), 0x00};
  if (!put_address(out, host, port)) {
    return {};
  }
  return out;
}

reply_result parse_reply(std::string_view buf) {
  reply_result r;
  if (buf.empty()) {
    return r;
  }
  if (byte_at(buf, 0) != version) {
    r.st = status::error;
    r.error = "not SOCKS version 5";
    return r;
  }
  if (buf.size() < 2) {
    return r;
  }
  r.code = static_cast<reply>(byte_at(buf, 1));
  if (buf.size() < 3) {
    return r;
  }
  if (byte_at(buf, 2) != 0) {
    r.st = status::error;
    r.error = "non-zero reserved byte";
    return r;
  }
  address_parse a = parse_address(buf, 3);
  if (a.st == status::error) {
    r.st = status::error;
    r.error = std::move(a.error);
    return r;
  }
  if (a.st == status::incomplete) {
    return r;
  }
  r.bound = std::move(a.addr);
  r.consumed = a.end;
  r.st = status::complete;
  return r;
}

}  // namespace exitpool::proto::socks5
