#include "cli/pool_options.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>

#include "ops/duration.hpp"
#include "proto/text.hpp"

namespace exitpool::cli {

namespace {

std::string env_secret(const std::string& option, const std::string& var) {
  const char* v = std::getenv(var.c_str());
  if (v == nullptr || *v == '\0') {
    throw std::runtime_error(fmt::format("{} {}: the variable is not set or empty", option, var));
  }
  return v;
}

std::chrono::milliseconds duration_of(const std::string& option, const std::string& text) {
  const auto s = ops::parse_duration_seconds(text);
  if (!s || *s < 0 || *s > 86400 * 7) {
    throw std::runtime_error(
        fmt::format("{} '{}': a duration such as 60s, 5m or 1h (at most 7 days)", option, proto::clip(text)));
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(*s * 1000));
}

std::optional<proto::exit_scheme> scheme_of(const std::string& text) {
  const auto l = proto::lower(text);
  if (l == "http") {
    return proto::exit_scheme::http;
  }
  if (l == "https") {
    return proto::exit_scheme::https;
  }
  if (l == "socks5") {
    return proto::exit_scheme::socks5;
  }
  if (l == "socks5h") {
    return proto::exit_scheme::socks5h;
  }
  return std::nullopt;
}

void set_credentials(pool::source_spec& s, const std::string& option, const std::string& pair) {
  const auto colon = pair.find(':');
  if (colon == std::string::npos || colon == 0) {
    throw std::runtime_error(fmt::format("{}: expected user:password", option));
  }
  s.defaults.user = pair.substr(0, colon);
  s.defaults.pass = pair.substr(colon + 1);
}

}  // namespace

std::string read_secret_file(const std::string& option, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error(fmt::format("{} {}: cannot open it", option, path));
  }
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  if (line.empty()) {
    throw std::runtime_error(fmt::format("{} {}: the first line is empty", option, path));
  }
  return line;
}

void add_pool_options(CLI::App* cmd, const std::string& pool_help) {
  auto all = [](CLI::Option* o) {
    return o->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->allow_extra_args(false);
  };
  all(cmd->add_option("--pool", pool_help)->type_name("FILE|URL"));
  all(cmd->add_option("--pool-tags",
                      "Tags for the exits of the --pool before it that lack them: 'type=isp country=us tier=1 "
                      "weight=2' (any key=value of a pool line but id)")
          ->type_name("TAGS"));
  all(cmd->add_option("--pool-scheme",
                      "Scheme of the bare host:port[:user:pass] lines (and JSON items without a protocol) of the "
                      "--pool before it: http (default), https, socks5, socks5h")
          ->type_name("SCHEME"));
  all(cmd->add_option("--pool-auth-file",
                      "File whose first line is user:password, added to the exits of the --pool before it "
                      "that have no credentials")
          ->type_name("FILE"));
  all(cmd->add_option("--pool-auth-env", "Like --pool-auth-file, from this environment variable")->type_name("VAR"));
  all(cmd->add_option("--pool-key-file",
                      "File whose first line is the API key of the --pool URL before it: put in place of {key} in "
                      "the URL, or sent in --pool-key-header; never logged or shown")
          ->type_name("FILE"));
  all(cmd->add_option("--pool-key-env", "Like --pool-key-file, from this environment variable")->type_name("VAR"));
  all(cmd->add_option("--pool-key-header", "Send the key as this request header (e.g. X-Api-Key) instead of {key}")
          ->type_name("NAME"));
  all(cmd->add_option("--pool-refresh",
                      "Fetch the --pool URL before it again this often (ETag/If-Modified-Since; a failed fetch "
                      "keeps the last good list and retries with a jittered backoff); default: at startup and "
                      "on SIGHUP only")
          ->type_name("DURATION"));
  all(cmd->add_option("--pool-timeout", "Limit for one fetch of the --pool URL before it (default 10s)")
          ->type_name("DURATION"));
  all(cmd->add_flag("--pool-allow-empty")
          ->description("An answer without exits from the --pool before it is an empty list, not an error"));
}

std::vector<pool::source_spec> pool_sources_of(const CLI::App& cmd) {
  std::vector<pool::source_spec> out;
  std::map<const CLI::Option*, std::size_t> used;     // results taken per option
  std::map<std::string, std::size_t> given_for_last;  // per-source options seen for out.back()
  for (const CLI::Option* opt : cmd.parse_order()) {
    const std::size_t k = used[opt]++;
    const std::string name = opt->get_name();
    if (name != "--pool" && !name.starts_with("--pool-")) {
      continue;
    }
    const std::string value = k < opt->results().size() ? opt->results()[k] : std::string();
    if (name == "--pool") {
      out.emplace_back().location = value;
      given_for_last.clear();
      continue;
    }
    if (out.empty()) {
      throw std::runtime_error(fmt::format("{} must follow the --pool it describes", name));
    }
    auto& s = out.back();
    // One value per source; the file and environment forms of one secret count as one option.
    const std::string kind = name.ends_with("-file") || name.ends_with("-env") ? name.substr(0, name.rfind('-')) : name;
    if (given_for_last[kind]++ > 0) {
      throw std::runtime_error(fmt::format("{} given twice for --pool {}", kind, proto::clip(s.name())));
    }
    if (name == "--pool-tags") {
      s.defaults.tags = value;
    } else if (name == "--pool-scheme") {
      s.defaults.scheme = scheme_of(value);
      if (!s.defaults.scheme) {
        throw std::runtime_error(fmt::format("--pool-scheme '{}': http, https, socks5 or socks5h", proto::clip(value)));
      }
    } else if (name == "--pool-auth-file") {
      set_credentials(s, name, read_secret_file(name, value));
    } else if (name == "--pool-auth-env") {
      set_credentials(s, name, env_secret(name, value));
    } else if (name == "--pool-key-file") {
      s.key = read_secret_file(name, value);
    } else if (name == "--pool-key-env") {
      s.key = env_secret(name, value);
    } else if (name == "--pool-key-header") {
      s.key_header = value;
    } else if (name == "--pool-refresh") {
      s.refresh = duration_of(name, value);
    } else if (name == "--pool-timeout") {
      s.timeout = duration_of(name, value);
    } else if (name == "--pool-allow-empty") {
      s.allow_empty = true;
    }
  }
  for (const auto& s : out) {
    if (auto err = pool::check_source(s); !err.empty()) {
      throw std::runtime_error(err);
    }
  }
  return out;
}

}  // namespace exitpool::cli
