#include "cli/fleet.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "fleet/redis_state.hpp"

namespace exitpool::cli {

namespace {

struct fleet_options {
  std::string state;
  std::string password;
  double timeout_s = 3;
};

int list_fleet(const fleet_options& o) {
  fleet::redis_url url;
  try {
    url = fleet::parse_redis_url(o.state);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("--state: {}", e.what()));
  }
  if (!o.password.empty()) {
    url.password = o.password;
  }
  const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  auto members = fleet::read_fleet(url, timeout);
  std::printf("%zu gateway%s alive in %s\n", members.size(), members.size() == 1 ? "" : "s",
              fleet::redacted(url).c_str());
  for (const auto& m : members) {
    std::printf("%s\t%s\theartbeat valid %lld ms\n", m.id.c_str(), m.info.c_str(), m.expires_in_ms);
  }
  return 0;
}

}  // namespace

void add_fleet(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<fleet_options>();
  auto* cmd = app.add_subcommand("fleet", "List the live gateways sharing a --state backend");
  cmd->add_option("--state", o->state, "The fleet's shared state: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]")
      ->required();
  cmd->add_option("--state-password", o->password, "Password for --state");
  cmd->add_option("--timeout", o->timeout_s, "Seconds to wait for Redis")->capture_default_str();
  cmd->callback([&run, o] { run = [o] { return list_fleet(*o); }; });
}

}  // namespace exitpool::cli
