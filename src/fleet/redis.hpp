#pragma once
// A small Redis client for the fleet state backend (fleet/redis_state.hpp) and the
// `exitpool fleet` command.
//
// Only two pieces of Debian's libhiredis are used: its reply reader (RESP bytes ->
// replies) and its command formatter (arguments -> RESP bytes). The socket, the
// timeouts and the event loop are our own: an Asio TCP socket driven by coroutines on
// whatever io_context owns the connection. No hiredis async adapter, no other event loop.
//
// Pipelining: exec() writes a batch of commands in one write and reads their replies in
// order; one round trip per batch, whatever its size.
//
// Threading: a connection belongs to the executor it was made with; call it from that
// executor's thread only, and from one coroutine at a time (exec and read are not
// re-entrant). The pure parts (parse_redis_url, format_command, reply_reader) are any thread.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace exitpool::fleet {

// redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]. HOST is a name, an IPv4 address or [IPv6].
struct redis_url {
  std::string host;
  std::uint16_t port = 6379;
  int db = 0;
  std::string user;      // empty: the default user
  std::string password;  // empty: no AUTH
};

// Parses a --state URL. Throws std::invalid_argument with a message that names the
// faulty part (never echoing the password).
redis_url parse_redis_url(std::string_view text);
// The URL without its credentials, for logs and errors: "redis://HOST:PORT/DB".
std::string redacted(const redis_url& u);

struct reply {
  enum class kind : std::uint8_t { string, status, error, integer, nil, array };
  kind type = kind::nil;
  std::string str;  // string, status, error
  long long integer = 0;
  std::vector<reply> elements;  // array

  bool is_error() const { return type == kind::error; }
  bool is_nil() const { return type == kind::nil; }
  // An integer reply, or a string holding a decimal integer; `fallback` otherwise.
  long long as_int(long long fallback = 0) const;
};

// One command in RESP (hiredis' redisFormatCommandArgv): binary-safe arguments.
std::string format_command(std::span<const std::string> args);
std::string format_command(std::span<const std::string_view> args);
// Views of a batch of owned commands (for exec over views); they point into `cmds`.
std::vector<std::vector<std::string_view>> command_views(const std::vector<std::vector<std::string>>& cmds);

// Incremental RESP parser (hiredis' reader). Feed bytes as they arrive; next() returns
// each complete reply in order. A protocol error is sticky: failed() stays true.
class reply_reader {
 public:
  reply_reader();
  ~reply_reader();
  reply_reader(const reply_reader&) = delete;
  reply_reader& operator=(const reply_reader&) = delete;

  void feed(std::string_view bytes);
  std::optional<reply> next();
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  redisReader* r_;
  std::string error_;
};

enum class redis_errc : std::uint8_t {
  none,
  connect,   // resolve / TCP connect failed
  io,        // the connection broke
  timeout,   // no complete answer within the timeout (the connection is closed)
  protocol,  // bytes that are not RESP
  auth,      // AUTH refused (wrong password, unknown user) or NOAUTH
  select,    // SELECT refused (no such database)
};
const char* redis_errc_name(redis_errc e);

struct redis_error {
  redis_errc code = redis_errc::none;
  std::string message;  // never contains the password
  explicit operator bool() const { return code != redis_errc::none; }
};

class connection {
 public:
  explicit connection(boost::asio::any_io_executor ex);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Connects, then AUTH (when the URL or `password` has one) and SELECT (db != 0), all
  // within `timeout`.
  boost::asio::awaitable<redis_error> connect(redis_url url, std::chrono::milliseconds timeout);
  // Sends every command of `cmds` in one write and reads as many replies, in order, into
  // `out` (Redis errors are replies, not failures). On failure the connection is closed.
  boost::asio::awaitable<redis_error> exec(std::vector<std::vector<std::string>> cmds, std::vector<reply>& out,
                                           std::chrono::milliseconds timeout);
  // The same over views: the caller keeps the bytes alive until the exchange ends (a batch
  // built from data it holds anyway, with no copy of each argument: the crawl frontier's rounds).
  boost::asio::awaitable<redis_error> exec(const std::vector<std::vector<std::string_view>>& cmds,
                                           std::vector<reply>& out, std::chrono::milliseconds timeout);
  // Reads the next reply (pub/sub messages). `timeout` 0: wait for ever.
  boost::asio::awaitable<redis_error> read(reply& out, std::chrono::milliseconds timeout);
  bool is_open() const { return sock_.is_open(); }
  void close();
  // Commands sent on this connection so far (for the commands-per-request figure).
  std::uint64_t commands_sent() const { return commands_sent_; }

 private:
  boost::asio::awaitable<redis_error> read_one(reply& out);
  void arm(std::chrono::milliseconds timeout);
  void disarm();

  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer deadline_;
  std::uint64_t op_ = 0;  // bumped per armed deadline: a stale expiry closes nothing
  bool timed_out_ = false;
  std::unique_ptr<reply_reader> reader_;  // fresh per connect: no bytes of an old connection
  std::vector<char> buf_;
  std::uint64_t commands_sent_ = 0;
};

}  // namespace exitpool::fleet
