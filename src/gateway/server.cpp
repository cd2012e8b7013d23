#include "gateway/server.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "gateway/session.hpp"
#include "net/shards.hpp"
#include "net/stream.hpp"

namespace exitpool::gateway {

namespace asio = boost::asio;
using net::tcp;

namespace {

asio::ssl::context make_tls_context(bool verify, const std::string& ca_file) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  if (verify) {
    ctx.set_default_verify_paths();
    if (!ca_file.empty()) {
      boost::system::error_code ec;
      ctx.load_verify_file(ca_file, ec);
      if (ec) {
        throw std::runtime_error(fmt::format("--ca-file {}: {}", ca_file, ec.message()));
      }
    }
    ctx.set_verify_mode(asio::ssl::verify_peer);
  } else {
    ctx.set_verify_mode(asio::ssl::verify_none);
  }
  return ctx;
}

void log_session_exception(std::exception_ptr e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("session ended by an unexpected exception: {}", ex.what());
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor acceptor, shard_state& shard) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(net::nothrow_awaitable);
    if (ec) {
      if (ec == asio::error::operation_aborted) {
        co_return;
      }
      // Out of descriptors and the like: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await t.async_wait(net::nothrow_awaitable);
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), run_session(std::move(sock), shard), log_session_exception);
  }
}

tcp::acceptor make_listener(asio::io_context& ctx, const tcp::endpoint& ep) {
  tcp::acceptor a(ctx);
  a.open(ep.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  // One listener per shard on the same port: the kernel spreads new connections.
  a.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
  if (ep.address().is_v6()) {
    a.set_option(asio::ip::v6_only(true));
  }
  a.bind(ep);
  a.listen(asio::socket_base::max_listen_connections);
  return a;
}

}  // namespace

shared_state::shared_state(config c, std::shared_ptr<const pool::snapshot> snap,
                           std::unordered_map<std::string, std::string> user_passwords)
    : cfg(std::move(c)),
      pool(std::move(snap)),
      users(std::move(user_passwords)),
      tls_verified(make_tls_context(true, cfg.ca_file)),
      tls_insecure(make_tls_context(false, "")) {}

std::unordered_map<std::string, std::string> load_users(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error(fmt::format("{}: cannot open users file", path));
  }
  std::unordered_map<std::string, std::string> users;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') {
      continue;
    }
    line = line.substr(first);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      throw std::runtime_error(fmt::format("{}:{}: expected user:password", path, n));
    }
    std::string user = line.substr(0, colon);
    if (user.find_first_of(" \t") != std::string::npos) {
      throw std::runtime_error(fmt::format("{}:{}: user name contains white space", path, n));
    }
    if (!users.emplace(user, line.substr(colon + 1)).second) {
      throw std::runtime_error(fmt::format("{}:{}: user '{}' appears twice", path, n, user));
    }
  }
  return users;
}

tcp::endpoint parse_listen(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument("expected [ADDR]:PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      throw std::invalid_argument("expected ADDR:PORT");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host == "localhost") {
    host = "127.0.0.1";
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    throw std::invalid_argument(fmt::format("'{}' is not an IP address", host));
  }
  unsigned long p = 0;
  try {
    std::size_t used = 0;
    p = std::stoul(port, &used);
    if (used != port.size() || p > 65535) {
      throw std::invalid_argument("");
    }
  } catch (const std::exception&) {
    throw std::invalid_argument(fmt::format("'{}' is not a port number", port));
  }
  return tcp::endpoint(addr, static_cast<std::uint16_t>(p));
}

int run_server(config cfg, std::shared_ptr<const pool::snapshot> snap,
               std::unordered_map<std::string, std::string> users, const std::function<void(int)>& on_ready) {
  const int threads = cfg.threads > 0 ? cfg.threads : net::hardware_threads();
  const auto endpoint = parse_listen(cfg.listen);
  shared_state shared(std::move(cfg), std::move(snap), std::move(users));
  net::shards runtime(threads);
  std::vector<std::unique_ptr<shard_state>> shard_states;
  for (int i = 0; i < threads; ++i) {
    auto seed = static_cast<std::uint64_t>(std::random_device{}()) << 32 | static_cast<std::uint64_t>(i);
    shard_states.push_back(std::make_unique<shard_state>(
        shard_state{shared, pool::selector(shared.cfg.policy, seed), i}));
    tcp::acceptor acceptor = make_listener(runtime.context(i), endpoint);
    asio::co_spawn(runtime.context(i), accept_loop(std::move(acceptor), *shard_states.back()), asio::detached);
  }

  asio::io_context main_ctx(1);
  asio::signal_set signals(main_ctx, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) {
      spdlog::info("signal {}: stopping", sig);
    }
    runtime.stop();
  });
  runtime.start();
  on_ready(threads);
  main_ctx.run();
  runtime.join();
  return 0;
}

}  // namespace exitpool::gateway
