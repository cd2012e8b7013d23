#pragma once
// Client TLS contexts for dialing https:// exits (TLS 1.2 and later). Built once at
// startup by the gateway and by `exitpool check`, then shared read-only by every
// shard's dials.

#include <boost/asio/ssl/context.hpp>
#include <string>

namespace exitpool::net {

// A client context. `verify`: check the peer against the system CA store plus
// `ca_file` (PEM, optional); otherwise no verification (exits with tls_verify=false).
// Throws std::runtime_error("--ca-file FILE: reason") when `ca_file` cannot be loaded.
boost::asio::ssl::context make_tls_context(bool verify, const std::string& ca_file);

}  // namespace exitpool::net
