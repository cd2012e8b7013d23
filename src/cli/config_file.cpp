#include "cli/config_file.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

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
        out.push_back("--" + name);
        out.push_back(scalar_text(item, where));
      }
      continue;
    }
    out.push_back("--" + name);
    out.push_back(scalar_text(node, where));
  }
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
    args.insert(args.begin() + 1, extra.begin(), extra.end());
    return;
  }
}

}  // namespace exitpool::cli
