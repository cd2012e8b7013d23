#include "fleet/redis.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <boost/asio.hpp>
#include <charconv>
#include <stdexcept>

namespace exitpool::fleet {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

int parse_number(std::string_view text, int max, const char* what) {
  int v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < 0 || v > max) {
    throw std::invalid_argument(fmt::format("{} '{}' is not a number from 0 to {}", what, text, max));
  }
  return v;
}

reply convert(const redisReply* r) {
  reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = reply::kind::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = reply::kind::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = reply::kind::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = reply::kind::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = reply::kind::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(convert(r->element[i]));
      }
      break;
    default:
      out.type = reply::kind::nil;
      break;
  }
  return out;
}

}  // namespace

redis_url parse_redis_url(std::string_view text) {
  constexpr std::string_view scheme = "redis://";
  if (!text.starts_with(scheme)) {
    if (text.starts_with("rediss://")) {
      throw std::invalid_argument("rediss:// (TLS) is not supported; use redis:// over a trusted network");
    }
    throw std::invalid_argument("expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]");
  }
  std::string_view rest = text.substr(scheme.size());
  redis_url u;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto colon = cred.find(':'); colon != std::string_view::npos) {
      u.user = std::string(cred.substr(0, colon));
      u.password = std::string(cred.substr(colon + 1));
    } else {
      u.password = std::string(cred);  // redis://PASSWORD@HOST, as redis-cli -u reads it
    }
    if (u.password.empty()) {
      throw std::invalid_argument("empty password after '@' (leave out the credentials, or use --state-password)");
    }
  }
  std::string_view hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      u.db = parse_number(db, 65535, "database");
    }
  }
  std::string_view port;
  if (hostport.starts_with('[')) {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) {
      throw std::invalid_argument("missing ']' after an IPv6 address");
    }
    u.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        throw std::invalid_argument("expected ':PORT' after ']'");
      }
      port = after.substr(1);
    }
  } else if (auto colon = hostport.find(':'); colon != std::string_view::npos) {
    u.host = std::string(hostport.substr(0, colon));
    port = hostport.substr(colon + 1);
  } else {
    u.host = std::string(hostport);
  }
  if (u.host.empty()) {
    throw std::invalid_argument("no host");
  }
  if (u.host.size() > 253) {
    throw std::invalid_argument("host name longer than 253 characters");
  }
  if (!port.empty() || hostport.ends_with(':')) {
    const int p = parse_number(port, 65535, "port");
    if (p == 0) {
      throw std::invalid_argument("port 0");
    }
    u.port = static_cast<std::uint16_t>(p);
  }
  return u;
}

std::string redacted(const redis_url& u) {
  const bool v6 = u.host.find(':') != std::string::npos;
  return fmt::format("redis://{}{}{}:{}/{}", v6 ? "[" : "", u.host, v6 ? "]" : "", u.port, u.db);
}

long long reply::as_int(long long fallback) const {
  if (type == kind::integer) {
    return integer;
  }
  if (type == kind::string || type == kind::status) {
    long long v = 0;
    auto [p, ec] = std::from_chars(str.data(), str.data() + str.size(), v);
    if (ec == std::errc() && p == str.data() + str.size() && !str.empty()) {
      return v;
    }
  }
  return fallback;
}

std::string format_command(std::span<const std::string_view> args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int n = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
  if (n < 0 || cmd == nullptr) {
    throw std::bad_alloc();
  }
  std::string out(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  return out;
}

std::string format_command(std::span<const std::string> args) {
  const std::vector<std::string_view> views(args.begin(), args.end());
  return format_command(std::span<const std::string_view>(views));
}

reply_reader::reply_reader() : r_(redisReaderCreate()) {
  if (r_ == nullptr) {
    throw std::bad_alloc();
  }
}

reply_reader::~reply_reader() {
  redisReaderFree(r_);
}

void reply_reader::feed(std::string_view bytes) {
  if (failed()) {
    return;
  }
  if (redisReaderFeed(r_, bytes.data(), bytes.size()) != REDIS_OK) {
    error_ = r_->errstr[0] != '\0' ? r_->errstr : "reader error";
  }
}

std::optional<reply> reply_reader::next() {
  if (failed()) {
    return std::nullopt;
  }
  void* raw = nullptr;
  if (redisReaderGetReply(r_, &raw) != REDIS_OK) {
    error_ = r_->errstr[0] != '\0' ? r_->errstr : "protocol error";
    return std::nullopt;
  }
  if (raw == nullptr) {
    return std::nullopt;
  }
  reply out = convert(static_cast<const redisReply*>(raw));
  freeReplyObject(raw);
  return out;
}

const char* redis_errc_name(redis_errc e) {
  switch (e) {
    case redis_errc::none:
      return "none";
    case redis_errc::connect:
      return "connect";
    case redis_errc::io:
      return "io";
    case redis_errc::timeout:
      return "timeout";
    case redis_errc::protocol:
      return "protocol";
    case redis_errc::auth:
      return "auth";
    case redis_errc::select:
      return "select";
  }
  return "unknown";
}

connection::connection(asio::any_io_executor ex)
    : sock_(ex), deadline_(ex), reader_(std::make_unique<reply_reader>()), buf_(16 * 1024) {}

void connection::close() {
  boost::system::error_code ignored;
  sock_.shutdown(tcp::socket::shutdown_both, ignored);
  sock_.close(ignored);
  deadline_.cancel();
}

void connection::arm(std::chrono::milliseconds timeout) {
  const std::uint64_t op = ++op_;
  timed_out_ = false;
  if (timeout.count() <= 0) {
    deadline_.cancel();
    return;
  }
  deadline_.expires_after(timeout);
  // Same thread as the operation: the expiry closes the socket, which ends the pending
  // read or write with an error. An expiry of an earlier operation (op_ moved on) is ignored.
  deadline_.async_wait([this, op](const boost::system::error_code& ec) {
    if (!ec && op == op_) {
      timed_out_ = true;
      boost::system::error_code ignored;
      sock_.close(ignored);
    }
  });
}

void connection::disarm() {
  ++op_;
  deadline_.cancel();
}

asio::awaitable<redis_error> connection::connect(redis_url url, std::chrono::milliseconds timeout) {
  close();
  reader_ = std::make_unique<reply_reader>();
  arm(timeout);
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code aec;
  auto addr = asio::ip::make_address(url.host, aec);
  if (!aec) {
    endpoints.emplace_back(addr, url.port);
  } else {
    tcp::resolver resolver(sock_.get_executor());
    auto [rec, results] = co_await resolver.async_resolve(url.host, std::to_string(url.port), nothrow);
    if (rec) {
      disarm();
      co_return redis_error{redis_errc::connect, fmt::format("resolving {}: {}", url.host, rec.message())};
    }
    for (const auto& r : results) {
      endpoints.push_back(r.endpoint());
    }
  }
  auto [cec, ep] = co_await asio::async_connect(sock_, endpoints, nothrow);
  if (cec) {
    const bool t = timed_out_;
    disarm();
    close();
    co_return redis_error{t ? redis_errc::timeout : redis_errc::connect,
                          t ? std::string("connect timed out") : cec.message()};
  }
  boost::system::error_code ignored;
  sock_.set_option(tcp::no_delay(true), ignored);
  disarm();
  std::vector<std::vector<std::string>> hello;
  if (!url.password.empty()) {
    if (url.user.empty()) {
      hello.push_back({"AUTH", url.password});
    } else {
      hello.push_back({"AUTH", url.user, url.password});
    }
  }
  if (url.db != 0) {
    hello.push_back({"SELECT", std::to_string(url.db)});
  }
  hello.push_back({"PING"});
  std::vector<reply> replies;
  if (auto err = co_await exec(std::move(hello), replies, timeout)) {
    co_return err;
  }
  std::size_t i = 0;
  if (!url.password.empty()) {
    if (replies[i].is_error()) {
      close();
      co_return redis_error{redis_errc::auth, fmt::format("AUTH refused: {}", replies[i].str)};
    }
    ++i;
  }
  if (url.db != 0) {
    if (replies[i].is_error()) {
      close();
      co_return redis_error{redis_errc::select, fmt::format("SELECT {} refused: {}", url.db, replies[i].str)};
    }
    ++i;
  }
  if (replies[i].is_error()) {
    close();
    // NOAUTH: the server wants a password and none was given.
    const bool auth = replies[i].str.starts_with("NOAUTH");
    co_return redis_error{auth ? redis_errc::auth : redis_errc::protocol,
                          auth ? fmt::format("the server requires a password: {}", replies[i].str)
                               : fmt::format("PING refused: {}", replies[i].str)};
  }
  co_return redis_error{};
}

asio::awaitable<redis_error> connection::read_one(reply& out) {
  for (;;) {
    if (auto r = reader_->next()) {
      out = std::move(*r);
      co_return redis_error{};
    }
    if (reader_->failed()) {
      close();
      co_return redis_error{redis_errc::protocol, reader_->error()};
    }
    auto [ec, n] = co_await sock_.async_read_some(asio::buffer(buf_), nothrow);
    if (ec) {
      const bool t = timed_out_;
      close();
      co_return redis_error{t ? redis_errc::timeout : redis_errc::io,
                            t ? std::string("no answer within the timeout") : ec.message()};
    }
    reader_->feed(std::string_view(buf_.data(), n));
  }
}

std::vector<std::vector<std::string_view>> command_views(const std::vector<std::vector<std::string>>& cmds) {
  std::vector<std::vector<std::string_view>> views;
  views.reserve(cmds.size());
  for (const auto& c : cmds) {
    views.emplace_back(c.begin(), c.end());
  }
  return views;
}

asio::awaitable<redis_error> connection::exec(std::vector<std::vector<std::string>> cmds, std::vector<reply>& out,
                                              std::chrono::milliseconds timeout) {
  co_return co_await exec(command_views(cmds), out, timeout);  // `cmds` lives in this frame until then
}

asio::awaitable<redis_error> connection::exec(const std::vector<std::vector<std::string_view>>& cmds,
                                              std::vector<reply>& out, std::chrono::milliseconds timeout) {
  out.clear();
  if (!sock_.is_open()) {
    co_return redis_error{redis_errc::io, "not connected"};
  }
  std::string wire;
  for (const auto& c : cmds) {
    wire += format_command(std::span<const std::string_view>(c));
  }
  commands_sent_ += cmds.size();
  arm(timeout);
  auto [wec, wn] = co_await asio::async_write(sock_, asio::buffer(wire), nothrow);
  if (wec) {
    const bool t = timed_out_;
    disarm();
    close();
    co_return redis_error{t ? redis_errc::timeout : redis_errc::io, t ? "write timed out" : wec.message()};
  }
  out.reserve(cmds.size());
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    reply r;
    if (auto err = co_await read_one(r)) {
      disarm();
      co_return err;
    }
    out.push_back(std::move(r));
  }
  disarm();
  co_return redis_error{};
}

asio::awaitable<redis_error> connection::read(reply& out, std::chrono::milliseconds timeout) {
  if (!sock_.is_open()) {
    co_return redis_error{redis_errc::io, "not connected"};
  }
  arm(timeout);
  auto err = co_await read_one(out);
  disarm();
  co_return err;
}

}  // namespace exitpool::fleet
