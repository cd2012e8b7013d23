#include "cli/config_file.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <stdexcept>

namespace exitpool::cli {

namespace {

// Long option names, each with whether it is a flag (takes no value).
std::map<std::string, bool> long_names(const CLI::App& cmd) {
  std::map<std::string, bool> names;
  for (const auto* opt : cmd.get_options()) {
    for (const auto& n : opt->get_lnames()) {
      names.emplace(n, opt->get_expected_max() == 0);
    }
  }
  return names;
}

std::string scalar_text(const toml::node& node, const std::string& where) {
  if (auto s = node.value<std::string>(); s && node.is_string()) {
    return *s;
  }
  if (node.is_integer()) {
    return std::to_string(*node.value<std::int64_t>());
  }
  if (node.is_floating_point()) {
    return fmt::format("{}", *node.value<double>());
  }
  throw std::runtime_error(where + ": expected a string or a number");
}

// One `[[NAME]]` table: `source = "..."` is --NAME's value, each other key K is --NAME-K
// (`[[pool]] source = "https://..." refresh = "60s"` → --pool https://... --pool-refresh 60s).
void add_described(const toml::table& table, const std::string& path, const std::map<std::string, bool>& names,
                   const std::string& name, std::vector<std::string>& out) {
  const auto line = table.source().begin.line;
  const auto* source = table.get("source");
  if (source == nullptr) {
    throw std::runtime_error(fmt::format("{}:{}: [[{}]] needs source = \"...\"", path, line, name));
  }
  out.push_back("--" + name);
  out.push_back(scalar_text(*source, fmt::format("{}:{}: {}.source", path, line, name)));
  for (const auto& [key, node] : table) {
    const std::string sub = name + "-" + std::string(key.str());
    const auto at = node.source().begin.line;
    if (key.str() == "source") {
      continue;
    }
    const auto it = names.find(sub);
    if (it == names.end()) {
      throw std::runtime_error(fmt::format("{}:{}: unknown key '{}' in [[{}]] (no option --{})", path, at,
                                           std::string(key.str()), name, sub));
    }
    if (it->second != node.is_boolean()) {
      throw std::runtime_error(fmt::format("{}:{}: {}: {}", path, at, std::string(key.str()),
                                           it->second ? "expected true or false" : "expected a value, not true/false"));
    }
    if (it->second) {
      if (*node.value<bool>()) {
        out.push_back("--" + sub);
      }
      continue;
    }
    out.push_back("--" + sub);
    out.push_back(scalar_text(node, fmt::format("{}:{}: {}", path, at, sub)));
  }
}

void add_table(const toml::table& table, const std::string& path, const std::map<std::string, bool>& names,
               const std::string& command, std::vector<std::string>& out) {
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    const auto line = node.source().begin.line;
    const std::string where = fmt::format("{}:{}: {}", path, line, name);
    if (node.is_table()) {
      if (name == command) {
        add_table(*node.as_table(), path, names, command, out);
        continue;
      }
      throw std::runtime_error(fmt::format("{}:{}: unknown table [{}]", path, line, name));
    }
    if (name == "config" || names.find(name) == names.end()) {
      throw std::runtime_error(
          fmt::format("{}:{}: unknown key '{}' (not an option of exitpool {})", path, line, name, command));
    }
    const bool is_flag = names.at(name);
    if (is_flag != node.is_boolean()) {
      throw std::runtime_error(where + (is_flag ? ": expected true or false" : ": expected a value, not true/false"));
    }
    if (is_flag) {
      if (*node.value<bool>()) {
        out.push_back("--" + name);
      }
      continue;
    }
    if (const auto* arr = node.as_array()) {
      for (const auto& item : *arr) {
        if (const auto* t = item.as_table()) {
          add_described(*t, path, names, name, out);
          continue;
        }
        out.push_back("--" + name);
        out.push_back(scalar_text(item, where));
      }
      continue;
    }
    out.push_back("--" + name);
    out.push_back(scalar_text(node, where));
  }
}

// --pool is repeatable, so the file's sources and the command line's would add up; but the
// command line wins over the file: with a --pool on it, the file's --pool and --pool-* go.
void drop_overridden_sources(std::vector<std::string>& extra, const std::vector<std::string>& args,
                             const CLI::App& cmd) {
  const bool given = std::any_of(args.begin(), args.end(),
                                 [](const std::string& a) { return a == "--pool" || a.starts_with("--pool="); });
  if (!given) {
    return;
  }
  const auto names = long_names(cmd);
  std::vector<std::string> kept;
  for (std::size_t i = 0; i < extra.size(); ++i) {
    const std::string& a = extra[i];
    if (a == "--pool" || a.starts_with("--pool-")) {
      const auto it = names.find(a.substr(2));
      if (it != names.end() && !it->second) {
        ++i;  // its value
      }
      continue;
    }
    kept.push_back(a);
  }
  extra = std::move(kept);
}

}  // namespace

std::vector<std::string> config_arguments(const std::string& path, const CLI::App& cmd) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw std::runtime_error(fmt::format("{}:{}:{}: {}", path, where.line, where.column, std::string(e.description())));
  }
  std::vector<std::string> out;
  add_table(table, path, long_names(cmd), cmd.get_name(), out);
  return out;
}

void expand_config(std::vector<std::string>& args, const CLI::App& app) {
  if (args.empty()) {
    return;
  }
  const CLI::App* cmd = nullptr;
  for (const auto* sub : app.get_subcommands({})) {
    if (sub->get_name() == args.front()) {
      cmd = sub;
    }
  }
  if (cmd == nullptr) {
    return;
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string file;
    if (args[i] == "--config" && i + 1 < args.size()) {
      file = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
    } else if (args[i].starts_with("--config=")) {
      file = args[i].substr(9);
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      continue;
    }
    auto extra = config_arguments(file, *cmd);
    drop_overridden_sources(extra, args, *cmd);
    args.insert(args.begin() + 1, extra.begin(), extra.end());
    return;
  }
}

}  // namespace exitpool::cli
