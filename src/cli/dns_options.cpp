#include "cli/dns_options.hpp"

#include <stdexcept>

#include "ops/duration.hpp"

namespace exitpool::cli {

net::dns::config dns_options::to_config() const {
  net::dns::config c;
  std::string error;
  if (!net::dns::server_csv(servers, error)) {
    throw std::runtime_error("--dns-server " + error);
  }
  c.servers = servers;
  if (min_ttl_s < 0 || max_ttl_s < 0 || negative_ttl_s < 0) {
    throw std::runtime_error("--dns-min-ttl, --dns-max-ttl, --dns-negative-ttl: seconds, 0 or more");
  }
  if (min_ttl_s > max_ttl_s) {
    throw std::runtime_error("--dns-min-ttl must not be above --dns-max-ttl");
  }
  if (!(timeout_s > 0) || timeout_s > 600) {
    throw std::runtime_error("--dns-timeout: a positive number of seconds (at most 600)");
  }
  if (cache_size < 1) {
    throw std::runtime_error("--dns-cache-size must be at least 1");
  }
  c.ttl.min_ttl = std::chrono::seconds(min_ttl_s);
  c.ttl.max_ttl = std::chrono::seconds(max_ttl_s);
  c.ttl.negative_ttl = std::chrono::seconds(negative_ttl_s);
  c.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  c.cache_size = cache_size;
  return c;
}

void add_dns_options(CLI::App* cmd, dns_options& o) {
  cmd->add_option("--dns-server", o.servers,
                  "DNS servers ADDR[:PORT] (comma-separated or repeated) asked instead of /etc/resolv.conf's; "
                  "/etc/hosts is still read first")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->delimiter(',');
  cmd->add_option("--dns-min-ttl", o.min_ttl_s, "Seconds an answer is cached at least, whatever its TTL")
      ->capture_default_str();
  cmd->add_option("--dns-max-ttl", o.max_ttl_s, "Seconds an answer is cached at most, whatever its TTL")
      ->capture_default_str();
  cmd->add_option("--dns-negative-ttl", o.negative_ttl_s,
                  "Seconds NXDOMAIN, NODATA and SERVFAIL answers are cached (at most --dns-max-ttl)")
      ->capture_default_str();
  cmd->add_option("--dns-timeout", o.timeout_s, "Seconds one lookup of a name may take")->capture_default_str();
  cmd->add_option("--dns-cache-size", o.cache_size, "Names cached per thread (least recently used dropped first)")
      ->capture_default_str();
  ops::accept_durations(cmd, {"--dns-min-ttl", "--dns-max-ttl", "--dns-negative-ttl", "--dns-timeout"});
}

}  // namespace exitpool::cli
