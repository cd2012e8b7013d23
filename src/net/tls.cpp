#include "net/tls.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace exitpool::net {

namespace asio = boost::asio;

asio::ssl::context make_tls_context(bool verify, const std::string& ca_file) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  // OpenSSL frees a connection's record buffers (~33 KiB) while they are empty: an idle
  // tunnel through a TLS exit keeps none. Costs an allocation per burst of records.
  SSL_CTX_set_mode(ctx.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  // No session cache: a tunnel never resumes a session, so nothing outlives its connection.
  SSL_CTX_set_session_cache_mode(ctx.native_handle(), SSL_SESS_CACHE_OFF);
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
