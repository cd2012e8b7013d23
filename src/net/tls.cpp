#include "net/tls.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace exitpool::net {

namespace asio = boost::asio;

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

}  // namespace exitpool::net
