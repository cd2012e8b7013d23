#include "net/dialer.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <random>

#include "net/happy_eyeballs.hpp"
#include "net/socket.hpp"
#include "proto/base64.hpp"
#include "proto/http_head.hpp"
#include "proto/ipv6_prefix.hpp"

namespace exitpool::net {

namespace {

namespace socks5 = proto::socks5;

pool::failure error_from(const error_code& ec) {
  namespace e = asio::error;
  if (ec == e::connection_refused) {
    return pool::failure::connection_refused;
  }
  if (ec == e::network_unreachable || ec == e::host_unreachable || ec == e::address_family_not_supported ||
      ec == e::address_in_use) {
    return pool::failure::destination_ip_unroutable;
  }
  if (ec == e::timed_out || ec == e::operation_aborted) {
    return pool::failure::connection_timeout;
  }
  if (ec == e::eof || ec == e::connection_reset || ec == e::broken_pipe) {
    return pool::failure::connection_terminated;
  }
  return pool::failure::destination_unavailable;
}

// Out of descriptors, buffers or local ports: this host's problem, not the exit's.
bool local_resource_error(const error_code& ec) {
  const int v = ec.value();
  return ec.category() == boost::system::system_category() &&
         (v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM || v == EADDRNOTAVAIL);
}

dial_result failed(pool::failure e, bool exit_fault, std::string detail) {
  dial_result r;
  r.error = e;
  r.exit_fault = exit_fault;
  r.detail = std::move(detail);
  return r;
}

// Credentials SOCKS5 cannot carry (RFC 1929: user 1..255 bytes, password 0..255). Pool
// lines are checked at load, so these were made for this request by a provider line's
// templates from the client's options: the client's fault, refused before the exit is
// reached and never held against it. Empty when they fit (or none are sent).
std::string socks5_credentials_refusal(const proto::exit_spec& spec) {
  if (spec.user.empty() || socks5::encodable_userpass(spec.user, spec.pass)) {
    return {};
  }
  return fmt::format(
      "the SOCKS5 credentials made for this request are too long for exit {} (user {} bytes, "
      "password {} bytes; at most 255 each): ask for shorter options",
      spec.id, spec.user.size(), spec.pass.size());
}

// Drops the addresses the access policy refuses; returns the reason when none is left.
std::string refused(const dial_options& opts, std::vector<tcp::endpoint>& eps) {
  if (!opts.check_address) {
    return {};
  }
  std::string why;
  std::erase_if(eps, [&](const tcp::endpoint& ep) {
    auto r = opts.check_address(ep.address(), ep.port());
    if (r.empty()) {
      return false;
    }
    if (why.empty()) {
      why = std::move(r);
    }
    return true;
  });
  return eps.empty() ? why : std::string();
}

struct resolved {
  pool::failure error = pool::failure::none;  // dns_error or dns_timeout
  std::string detail;                         // "cannot resolve NAME: why"
  std::vector<tcp::endpoint> endpoints;       // IPv4 first, then IPv6
};

// IP literals without a lookup; names through the shard's resolver (cached, coalesced).
awaitable<resolved> resolve(const dial_options& opts, const std::string& host, std::uint16_t port) {
  resolved out;
  error_code ec;
  if (auto addr = asio::ip::make_address(host, ec); !ec) {
    out.endpoints.emplace_back(addr, port);
    co_return out;
  }
  if (opts.resolver == nullptr) {
    out.error = pool::failure::dns_error;
    out.detail = fmt::format("cannot resolve {}: no resolver for names here", host);
    co_return out;
  }
  auto r = co_await opts.resolver->resolve(host);
  if (r.st != dns::status::ok) {
    out.error = r.st == dns::status::timeout ? pool::failure::dns_timeout : pool::failure::dns_error;
    out.detail = describe_failure(host, r.st);
    co_return out;
  }
  for (const auto& a : r.addresses) {
    out.endpoints.emplace_back(a, port);
  }
  co_return out;
}

dial_result unresolved(resolved r, bool exit_fault) {
  auto d = failed(r.error, exit_fault, std::move(r.detail));
  d.socks_reply = socks5::reply::host_unreachable;
  return d;
}

// Connects to the first endpoint that accepts, one after another (an exit's own address).
awaitable<std::tuple<error_code, tcp::socket>> connect_any(const std::vector<tcp::endpoint>& eps) {
  auto ex = co_await asio::this_coro::executor;
  error_code last = asio::error::address_family_not_supported;
  for (const auto& ep : eps) {
    tcp::socket sock(ex);
    if (auto ec = open_from(sock, ep, std::nullopt); ec) {
      last = ec;
      continue;
    }
    auto cec = co_await connect_socket(sock, ep);
    if (!cec) {
      error_code ec;
      sock.set_option(tcp::no_delay(true), ec);
      co_return std::tuple{error_code{}, std::move(sock)};
    }
    last = cec;
    if (cec == asio::error::operation_aborted) {
      break;
    }
  }
  co_return std::tuple{last, tcp::socket(ex)};
}

// A shard's random source for prefix exits' addresses (one per thread: no lock, no sharing).
std::mt19937_64& shard_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

struct direct_source {
  std::optional<source_address> source;  // unset: the default route
  std::string text;                      // for messages: the address, or "default route"
  std::string error;                     // the exit's address is unusable
};

// Where a direct exit's connection leaves from: its address, or one inside its prefix
// (the sticky session's, else a random one).
direct_source source_of(const proto::exit_spec& spec, const dial_options& opts) {
  direct_source out;
  if (spec.host.empty()) {
    out.text = "default route";
    return out;
  }
  error_code ec;
  auto addr = asio::ip::make_address(spec.host, ec);
  if (ec || (spec.prefix_len > 0 && !addr.is_v6())) {
    out.error = "bad source address " + spec.host;
    return out;
  }
  if (spec.prefix_len == 0) {
    out.source = source_address{addr, false};
    out.text = spec.host;
    return out;
  }
  proto::ipv6_prefix prefix;
  prefix.network = addr.to_v6().to_bytes();
  prefix.length = spec.prefix_len;
  auto& rng = shard_rng();
  const auto bytes = opts.source_key ? proto::sticky_address_in_prefix(prefix, *opts.source_key)
                                     : proto::address_in_prefix(prefix, rng(), rng());
  out.source = source_address{asio::ip::address_v6(bytes), true};
  out.text = proto::format_ipv6(bytes);
  return out;
}

// Reads more bytes from `s` onto the end of `buf`.
awaitable<error_code> read_more(stream& s, std::string& buf) {
  char tmp[4096];
  auto [ec, n] = co_await s.read_some(asio::buffer(tmp));
  buf.append(tmp, n);
  co_return ec;
}

std::string basic_credentials(const proto::exit_spec& spec) {
  return proto::base64_encode(spec.user + ":" + spec.pass);
}

awaitable<dial_result> http_connect(stream up, const proto::exit_spec& spec, const std::string& host,
                                    std::uint16_t port) {
  std::string authority = proto::format_authority(host, port);
  std::string req = fmt::format("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n", authority);
  if (!spec.user.empty()) {
    req += "Proxy-Authorization: Basic " + basic_credentials(spec) + "\r\n";
  }
  req += "\r\n";
  if (auto [ec, n] = co_await up.write_all(asio::buffer(req)); ec) {
    co_return failed(error_from(ec), true, fmt::format("sending CONNECT to exit: {}", ec.message()));
  }
  std::string buf;
  for (;;) {
    auto parsed = proto::parse_response_head(buf);
    if (parsed.status == proto::parse_status::error) {
      co_return failed(pool::failure::http_protocol_error, true,
                       fmt::format("exit answered CONNECT with a malformed response: {}", parsed.error));
    }
    if (parsed.status == proto::parse_status::complete) {
      int st = parsed.head.status;
      if (st >= 200 && st < 300) {
        dial_result r;
        r.leftover = buf.substr(parsed.consumed);
        r.upstream = std::move(up);
        co_return r;
      }
      if (st == 407) {
        co_return failed(pool::failure::proxy_auth_failed, true, "exit rejected our credentials (407 to CONNECT)");
      }
      auto r = failed(pool::failure::destination_unavailable, st == 403,
                      fmt::format("exit answered CONNECT {} with {} {}", authority, st, parsed.head.reason));
      r.socks_reply = st == 403 ? socks5::reply::not_allowed : socks5::reply::host_unreachable;
      co_return r;
    }
    if (auto ec = co_await read_more(up, buf); ec) {
      co_return failed(error_from(ec), true, fmt::format("exit closed during CONNECT: {}", ec.message()));
    }
  }
}

// Reads one complete SOCKS5 message with `parse`; returns the parse result.
template <typename Parse>
awaitable<std::tuple<error_code, std::invoke_result_t<Parse, std::string_view>>> read_socks(stream& up,
                                                                                            std::string& buf,
                                                                                            Parse parse) {
  for (;;) {
    auto r = parse(std::string_view(buf));
    if (r.st != socks5::status::incomplete) {
      if (r.st == socks5::status::complete) {
        buf.erase(0, r.consumed);
      }
      co_return std::tuple{error_code{}, std::move(r)};
    }
    if (auto ec = co_await read_more(up, buf); ec) {
      co_return std::tuple{ec, std::move(r)};
    }
  }
}

awaitable<dial_result> socks5_connect(stream up, const proto::exit_spec& spec, std::string host, std::uint16_t port,
                                      bool login_only) {
  const bool with_auth = !spec.user.empty();
  std::string buf;
  auto closed = [](const error_code& ec) {
    return failed(error_from(ec), true, fmt::format("SOCKS5 exit closed during handshake: {}", ec.message()));
  };
  const std::string greeting = socks5::make_greeting(with_auth);
  if (auto [ec, n] = co_await up.write_all(asio::buffer(greeting)); ec) {
    co_return closed(ec);
  }
  auto [mec, choice] = co_await read_socks(up, buf, socks5::parse_method_choice);
  if (mec) {
    co_return closed(mec);
  }
  if (choice.st == socks5::status::error) {
    co_return failed(pool::failure::http_protocol_error, true, "SOCKS5 exit answered garbage: " + choice.error);
  }
  if (choice.method == socks5::method::userpass && with_auth) {
    const std::string login = socks5::make_userpass(spec.user, spec.pass);
    if (login.empty()) {  // refused before the dial; kept so an empty write never waits for a reply
      co_return failed(pool::failure::bad_request, false, socks5_credentials_refusal(spec));
    }
    if (auto [ec, n] = co_await up.write_all(asio::buffer(login)); ec) {
      co_return closed(ec);
    }
    auto [aec, st] = co_await read_socks(up, buf, socks5::parse_userpass_status);
    if (aec) {
      co_return closed(aec);
    }
    if (st.st == socks5::status::error || !st.ok) {
      co_return failed(pool::failure::proxy_auth_failed, true, "SOCKS5 exit rejected our credentials");
    }
  } else if (choice.method != socks5::method::no_auth) {
    co_return failed(pool::failure::proxy_auth_failed, true,
                     with_auth ? "SOCKS5 exit accepts none of our methods"
                               : "SOCKS5 exit requires credentials and the pool line has none");
  }
  if (login_only) {
    dial_result r;
    r.upstream = std::move(up);
    co_return r;
  }
  const std::string request = socks5::make_connect(host, port);
  if (request.empty()) {
    // The client's target, not the exit: gateway/connect.cpp refuses such names before
    // any dial; this keeps the encoder's refusal from ever blaming the exit.
    co_return failed(pool::failure::bad_request, false, "target name cannot be sent to a SOCKS5 exit (1..255 bytes)");
  }
  if (auto [ec, n] = co_await up.write_all(asio::buffer(request)); ec) {
    co_return closed(ec);
  }
  auto [rec, reply] = co_await read_socks(up, buf, socks5::parse_reply);
  if (rec) {
    co_return closed(rec);
  }
  if (reply.st == socks5::status::error) {
    co_return failed(pool::failure::http_protocol_error, true, "SOCKS5 exit answered garbage: " + reply.error);
  }
  if (reply.code != socks5::reply::succeeded) {
    auto r = failed(reply.code == socks5::reply::connection_refused ? pool::failure::connection_refused
                    : reply.code == socks5::reply::ttl_expired      ? pool::failure::connection_timeout
                                                                    : pool::failure::destination_unavailable,
                    reply.code == socks5::reply::general_failure || reply.code == socks5::reply::not_allowed,
                    fmt::format("SOCKS5 exit could not reach {}: {}", proto::format_authority(host, port),
                                socks5::describe(reply.code)));
    r.socks_reply = reply.code;
    co_return r;
  }
  dial_result r;
  r.leftover = std::move(buf);
  r.upstream = std::move(up);
  co_return r;
}

awaitable<dial_result> tls_handshake(tcp::socket sock, const proto::exit_spec& spec, const dial_options& opts,
                                     std::unique_ptr<tls_stream>& out) {
  auto* ctx = spec.tls_verify ? opts.tls_verified : opts.tls_insecure;
  if (ctx == nullptr) {
    co_return failed(pool::failure::tls_protocol_error, true, "no TLS context configured");
  }
  auto tls = std::make_unique<tls_stream>(std::move(sock), ctx->native_handle());
  if (!tls->valid()) {
    co_return failed(pool::failure::tls_protocol_error, true, "cannot set up a TLS connection (out of memory?)");
  }
  SSL* ssl = tls->native_handle();
  error_code aec;
  asio::ip::make_address(spec.host, aec);
  const bool is_ip = !aec;
  if (!is_ip) {
    SSL_set_tlsext_host_name(ssl, spec.host.c_str());
  }
  if (spec.tls_verify) {
    SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), spec.host.c_str());
    } else {
      SSL_set1_host(ssl, spec.host.c_str());
    }
  } else {
    SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
  }
  auto ec = co_await tls->handshake();
  if (ec) {
    long vr = SSL_get_verify_result(ssl);
    if (spec.tls_verify && vr != X509_V_OK) {
      co_return failed(pool::failure::tls_certificate_error, true,
                       fmt::format("exit's TLS certificate did not verify: {}", X509_verify_cert_error_string(vr)));
    }
    co_return failed(pool::failure::tls_protocol_error, true,
                     fmt::format("TLS handshake with exit failed: {}", ec.message()));
  }
  out = std::move(tls);
  co_return dial_result{};
}

awaitable<dial_result> dial_impl(const pool::exit& ex, std::string host, std::uint16_t port, dial_mode mode,
                                 dial_options opts) {
  const auto& spec = ex.spec();
  if (spec.scheme == proto::exit_scheme::direct) {
    auto src = source_of(spec, opts);
    if (!src.error.empty()) {
      co_return failed(pool::failure::destination_ip_unroutable, true, src.error);
    }
    const auto& source = src.source;
    if (mode == dial_mode::handshake) {
      // Nothing to reach: the exit works if this host still has its source address.
      tcp::socket probe(co_await asio::this_coro::executor);
      if (source) {
        const tcp::endpoint any(source->address.is_v4() ? asio::ip::address(asio::ip::address_v4::any())
                                                        : asio::ip::address(asio::ip::address_v6::any()),
                                0);
        if (auto ec = open_from(probe, any, source); ec) {
          co_return failed(pool::failure::destination_ip_unroutable, true,
                           fmt::format("cannot use source address {}: {}", src.text, ec.message()));
        }
      }
      co_return dial_result{};
    }
    auto target = co_await resolve(opts, host, port);
    if (target.error != pool::failure::none) {
      co_return unresolved(std::move(target), false);
    }
    auto& eps = target.endpoints;
    if (source) {
      // A source address speaks one family: only the target's addresses of that family.
      const bool v4 = source->address.is_v4();
      const std::size_t before = eps.size();
      std::erase_if(eps, [v4](const tcp::endpoint& ep) { return ep.address().is_v4() != v4; });
      if (eps.empty()) {
        // Not the exit's fault (another exit of the other family can reach it): SOCKS5 0x03.
        co_return failed(pool::failure::destination_ip_unroutable, false,
                         fmt::format("{} has no IPv{} address ({} of the other family), and exit {} connects from "
                                     "the IPv{} address {}",
                                     host, v4 ? 4 : 6, before, ex.id(), v4 ? 4 : 6, src.text));
      }
    }
    if (auto why = refused(opts, eps); !why.empty()) {
      co_return failed(pool::failure::target_prohibited, false, why);
    }
    auto [cec, sock] = co_await connect_racing(happy_eyeballs_order(eps), source, opts.happy_eyeballs_delay);
    if (cec) {
      // A source address this host does not have is the exit's fault; a refusing target is not.
      bool bind_fault = cec.value() == EADDRNOTAVAIL;
      co_return failed(bind_fault ? pool::failure::destination_ip_unroutable : error_from(cec), bind_fault,
                       fmt::format("connect to {}{} from {} failed: {}", proto::format_authority(host, port),
                                   eps.size() > 1 ? fmt::format(" ({} addresses)", eps.size()) : std::string(),
                                   src.text, cec.message()));
    }
    error_code ec;
    sock.set_option(tcp::no_delay(true), ec);
    dial_result r;
    r.upstream = stream(std::move(sock));
    co_return r;
  }

  // Through a proxy: first reach the proxy itself.
  if (spec.scheme == proto::exit_scheme::socks5 || spec.scheme == proto::exit_scheme::socks5h) {
    if (auto why = socks5_credentials_refusal(spec); !why.empty()) {
      co_return failed(pool::failure::bad_request, false, std::move(why));
    }
  }
  auto proxy = co_await resolve(opts, spec.host, spec.port);
  if (proxy.error != pool::failure::none) {
    proxy.detail = "exit host: " + proxy.detail;
    co_return unresolved(std::move(proxy), true);
  }
  auto [cec, sock] = co_await connect_any(proxy.endpoints);
  if (cec) {
    co_return failed(
        error_from(cec), !local_resource_error(cec),
        fmt::format("connect to exit {} failed: {}", proto::format_authority(spec.host, spec.port), cec.message()));
  }
  stream up;
  if (spec.scheme == proto::exit_scheme::https) {
    std::unique_ptr<tls_stream> tls;
    auto hr = co_await tls_handshake(std::move(sock), spec, opts, tls);
    if (hr.error != pool::failure::none) {
      co_return hr;
    }
    up = stream(std::move(tls));
  } else {
    up = stream(std::move(sock));
  }

  switch (spec.scheme) {
    case proto::exit_scheme::http:
    case proto::exit_scheme::https:
      if (mode != dial_mode::tunnel) {
        dial_result r;
        r.upstream = std::move(up);
        co_return r;
      }
      co_return co_await http_connect(std::move(up), spec, host, port);
    case proto::exit_scheme::socks5:
      if (mode == dial_mode::handshake) {
        co_return co_await socks5_connect(std::move(up), spec, host, port, true);
      }
      {
        // socks5:// means the gateway resolves names; socks5h:// lets the exit do it.
        auto target = co_await resolve(opts, host, port);
        if (target.error != pool::failure::none) {
          co_return unresolved(std::move(target), false);
        }
        auto& targets = target.endpoints;
        if (auto why = refused(opts, targets); !why.empty()) {
          co_return failed(pool::failure::target_prohibited, false, why);
        }
        co_return co_await socks5_connect(std::move(up), spec, targets.front().address().to_string(), port, false);
      }
    case proto::exit_scheme::socks5h:
      co_return co_await socks5_connect(std::move(up), spec, host, port, mode == dial_mode::handshake);
    case proto::exit_scheme::direct:
      break;
  }
  co_return failed(pool::failure::destination_unavailable, true, "unsupported exit scheme");
}

awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(nothrow_awaitable);
}

}  // namespace

awaitable<dial_result> dial(const pool::exit& ex, std::string host, std::uint16_t port, dial_mode mode,
                            dial_options opts) {
  using namespace asio::experimental::awaitable_operators;
  auto timeout = opts.timeout;
  auto outcome = co_await (dial_impl(ex, std::move(host), port, mode, opts) || sleep_for(timeout));
  if (outcome.index() == 0) {
    co_return std::move(std::get<0>(outcome));
  }
  co_return failed(pool::failure::connection_timeout, true,
                   fmt::format("dial through exit {} timed out after {} ms", ex.id(), timeout.count()));
}

}  // namespace exitpool::net
