#include "net/probe.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "proto/base64.hpp"
#include "proto/text.hpp"

namespace exitpool::net {

namespace {

constexpr std::size_t max_body_bytes = 64 * 1024;
constexpr std::size_t max_body_line = 200;

double ms_since(clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
}

struct exchange_result {
  std::string error;  // empty on success
  pool::failure kind = pool::failure::none;
  int status = 0;
  std::string reason;
  std::string body;  // decoded, at most max_body_bytes
};

// Appends what one read from `up` returns to `b`.
awaitable<std::tuple<error_code, std::size_t>> read_more(stream& up, std::string& b) {
  const std::size_t old = b.size();
  b.resize(old + 16 * 1024);
  auto [ec, n] = co_await up.read_some(asio::buffer(b.data() + old, 16 * 1024));
  b.resize(old + n);
  co_return std::tuple{ec, n};
}

// Sends `request` on `up` and reads the response head and up to max_body_bytes of body.
// `up` is owned by the caller, which awaits this coroutine to completion.
awaitable<exchange_result> http_exchange(stream& up, std::string request, std::string buf) {
  exchange_result out;
  if (auto [ec, n] = co_await up.write_all(asio::buffer(request)); ec) {
    out.error = "sending the request failed: " + ec.message();
    out.kind = pool::failure::connection_terminated;
    co_return out;
  }
  proto::response_parse_result parsed;
  for (;;) {
    parsed = proto::parse_response_head(buf);
    if (parsed.status == proto::parse_status::error) {
      out.error = "malformed response: " + parsed.error;
      out.kind = pool::failure::http_protocol_error;
      co_return out;
    }
    if (parsed.status == proto::parse_status::complete) {
      if (parsed.head.status >= 100 && parsed.head.status < 200) {
        buf.erase(0, parsed.consumed);  // interim response
        continue;
      }
      break;
    }
    auto [ec, n] = co_await read_more(up, buf);
    if (n == 0 && ec) {
      out.error =
          buf.empty() ? "closed before responding: " + ec.message() : "response head incomplete: " + ec.message();
      out.kind = pool::failure::response_incomplete;
      co_return out;
    }
  }
  out.status = parsed.head.status;
  out.reason = parsed.head.reason;
  buf.erase(0, parsed.consumed);
  auto framing = proto::response_body_framing(parsed.head, "GET");
  if (!framing.framing) {
    out.error = "response with bad framing: " + framing.error;
    out.kind = pool::failure::http_protocol_error;
    co_return out;
  }
  const auto kind = framing.framing->kind;
  proto::chunked_scanner scanner;
  std::size_t scanned = 0;
  auto complete = [&]() {
    switch (kind) {
      case proto::body_kind::none:
        return true;
      case proto::body_kind::content_length:
        return buf.size() >= framing.framing->length;
      case proto::body_kind::chunked: {
        auto r = scanner.feed(std::string_view(buf).substr(scanned));
        scanned += r.consumed;
        return r.done || r.error;
      }
      case proto::body_kind::until_close:
        return false;
    }
    return true;
  };
  while (!complete() && buf.size() < max_body_bytes) {
    auto [ec, n] = co_await read_more(up, buf);
    if (n == 0 && ec) {
      break;  // EOF ends an until-close body; a truncated body still has its first line
    }
  }
  if (kind == proto::body_kind::chunked) {
    out.body = decode_chunked(buf);
  } else if (kind == proto::body_kind::content_length) {
    out.body = buf.substr(0, std::min<std::uint64_t>(framing.framing->length, buf.size()));
  } else if (kind == proto::body_kind::until_close) {
    out.body = std::move(buf);
  }
  if (out.body.size() > max_body_bytes) {
    out.body.resize(max_body_bytes);
  }
  co_return out;
}

std::string first_body_line(std::string_view body) {
  std::string_view line = body.substr(0, body.find('\n'));
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  return proto::printable(line.substr(0, max_body_line));
}

}  // namespace

probe_target_parse parse_probe_target(std::string_view url) {
  probe_target_parse out;
  auto target = proto::parse_absolute_target(url);
  if (!target) {
    out.error = "expected http://host[:port][/path]";
    return out;
  }
  if (target->scheme != "http") {
    out.error = fmt::format("only http:// check URLs are supported, not {}://", target->scheme);
    return out;
  }
  probe_target t;
  t.url = std::string(url);
  t.target = std::move(*target);
  const auto& w = t.target.where;
  if (w.port != 80) {
    t.host_header = proto::format_authority(w.host, w.port);
  } else {
    t.host_header = w.host.find(':') != std::string::npos ? "[" + w.host + "]" : w.host;
  }
  out.target = std::move(t);
  return out;
}

awaitable<probe_result> probe_exit(const pool::exit& ex, const probe_target* target, dial_options opts,
                                   std::chrono::milliseconds timeout) {
  probe_result res;
  const auto& spec = ex.spec();
  const bool via_http_proxy = spec.scheme == proto::exit_scheme::http || spec.scheme == proto::exit_scheme::https;
  const auto t0 = clock::now();
  const auto deadline = t0 + timeout;
  opts.timeout = std::min(opts.timeout, timeout);

  const dial_mode mode = target == nullptr ? dial_mode::handshake
                         : via_http_proxy  ? dial_mode::forward
                                           : dial_mode::tunnel;
  // Named locals, not conditional temporaries inside the co_await: GCC 12 mishandles those.
  std::string host;
  std::uint16_t port = 0;
  if (target != nullptr) {
    host = target->target.where.host;
    port = target->target.where.port;
  }
  auto r = co_await dial(ex, std::move(host), port, mode, opts);
  res.latency_ms = ms_since(t0);
  if (r.error != pool::failure::none) {
    res.error = proto::printable(r.detail);
    res.kind = r.error;
    res.exit_fault = r.exit_fault;
    co_return res;
  }
  res.dial_ms = res.latency_ms;
  stream up = std::move(r.upstream);
  if (target == nullptr) {
    up.close();
    res.ok = true;
    co_return res;
  }

  // Absolute-form to HTTP proxies (the forward path the gateway uses for plain
  // HTTP); origin-form inside tunnels.
  std::string req = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: exitpool-check/0.1\r\nAccept: */*\r\n",
                                via_http_proxy ? target->url : target->target.origin_form, target->host_header);
  if (via_http_proxy && !spec.user.empty()) {
    req += "Proxy-Authorization: Basic " + proto::base64_encode(spec.user + ":" + spec.pass) + "\r\n";
  }
  req += "Connection: close\r\n\r\n";

  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_at(deadline);
  auto outcome =
      co_await (http_exchange(up, std::move(req), std::move(r.leftover)) || timer.async_wait(nothrow_awaitable));
  up.close();
  res.latency_ms = ms_since(t0);
  if (outcome.index() == 1) {
    // The dial worked; an exit that then stalls is the usual failure of a dead proxy.
    res.error = fmt::format("no complete response within {} ms", timeout.count());
    res.kind = pool::failure::response_timeout;
    res.exit_fault = true;
    co_return res;
  }
  auto& x = std::get<0>(outcome);
  res.status = x.status;
  res.exit_ip = first_line_ip(x.body);
  res.body_line = first_body_line(x.body);
  if (!x.error.empty()) {
    res.error = proto::printable(x.error);
    res.kind = x.kind;
    res.exit_fault = true;
    co_return res;
  }
  if (x.status < 200 || x.status > 299) {
    res.error = proto::printable(fmt::format("HTTP {} {}", x.status, x.reason));
    // A proxy exit that refuses our credentials is broken; any other status came
    // from (or on behalf of) the target and says nothing certain about the exit.
    res.exit_fault = via_http_proxy && x.status == 407;
    co_return res;
  }
  res.ok = true;
  co_return res;
}

std::string first_line_ip(std::string_view body) {
  std::string_view line = body.substr(0, body.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
    line.remove_suffix(1);
  }
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    line.remove_prefix(1);
  }
  if (line.empty() || line.size() > 64) {
    return "";
  }
  error_code ec;
  auto addr = asio::ip::make_address(std::string(line), ec);
  return ec ? std::string() : addr.to_string();
}

std::string decode_chunked(std::string_view raw) {
  std::string out;
  for (;;) {
    const auto eol = raw.find('\n');
    if (eol == std::string_view::npos) {
      return out;
    }
    std::string_view size_line = raw.substr(0, eol);
    size_line = size_line.substr(0, size_line.find(';'));
    std::uint64_t size = 0;
    bool any = false;
    for (char c : size_line) {
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (d < 0) {
        break;  // CR, white space before an extension
      }
      if (size > (std::uint64_t{1} << 40)) {
        return out;
      }
      size = size * 16 + static_cast<std::uint64_t>(d);
      any = true;
    }
    if (!any || size == 0) {
      return out;
    }
    raw.remove_prefix(eol + 1);
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(size, raw.size()));
    out.append(raw.substr(0, take));
    if (raw.size() < size) {
      return out;
    }
    raw.remove_prefix(take);
    // The CRLF after the chunk data.
    if (!raw.empty() && raw.front() == '\r') {
      raw.remove_prefix(1);
    }
    if (!raw.empty() && raw.front() == '\n') {
      raw.remove_prefix(1);
    }
  }
}

}  // namespace exitpool::net
