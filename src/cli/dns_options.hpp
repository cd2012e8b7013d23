#pragma once
// The --dns-* options of serve, check and fetch (and their TOML keys, cli/config_file.hpp),
// turned into the resolver's settings (net/dns_cache.hpp).

#include <CLI/CLI.hpp>
#include <cstddef>
#include <string>
#include <vector>

#include "net/dns_cache.hpp"

namespace exitpool::cli {

struct dns_options {
  std::vector<std::string> servers;
  int min_ttl_s = 1;
  int max_ttl_s = 3600;
  int negative_ttl_s = 5;
  double timeout_s = 5;
  std::size_t cache_size = 10000;

  // Throws std::runtime_error naming the option when a value is out of range or a
  // server is not ADDR[:PORT].
  net::dns::config to_config() const;
};

// Adds --dns-server, --dns-min-ttl, --dns-max-ttl, --dns-negative-ttl, --dns-timeout and
// --dns-cache-size to `cmd`, bound to `o` (which must outlive the parse).
void add_dns_options(CLI::App* cmd, dns_options& o);

}  // namespace exitpool::cli
