#include "ops/cli_docs.hpp"

#include <cstdio>
#include <map>
#include <memory>
#include <vector>

namespace exitpool::ops {

namespace {

bool visible(const CLI::App* a) {
  return !a->get_group().empty();
}

std::vector<const CLI::App*> commands(const CLI::App& root) {
  std::vector<const CLI::App*> out;
  for (const auto* sub : root.get_subcommands({})) {
    if (visible(sub)) {
      out.push_back(sub);
    }
  }
  return out;
}

std::vector<const CLI::Option*> options(const CLI::App& cmd) {
  std::vector<const CLI::Option*> out;
  for (const auto* opt : cmd.get_options()) {
    if (!opt->get_group().empty() && !opt->get_lnames().empty()) {
      out.push_back(opt);
    }
  }
  return out;
}

bool takes_value(const CLI::Option* opt) {
  return opt->get_expected_max() != 0 && opt->get_type_size() != 0;
}

// "TEXT:{wait,move}" -> {"wait", "move"}; empty when the option has no fixed set of values.
std::vector<std::string> choices(const CLI::Option* opt) {
  const std::string t = opt->get_type_name();
  const auto open = t.find('{');
  const auto close = t.rfind('}');
  std::vector<std::string> out;
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return out;
  }
  std::string cur;
  for (auto i = open + 1; i < close; ++i) {
    if (t[i] == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (t[i] != ' ') {
      cur += t[i];
    }
  }
  out.push_back(cur);
  return out;
}

// The value's placeholder: the type before any ':' ("TEXT:{wait,move}" -> "TEXT").
std::string value_label(const CLI::Option* opt) {
  std::string t = opt->get_type_name();
  if (const auto colon = t.find(':'); colon != std::string::npos) {
    t.resize(colon);
  }
  return t.empty() ? "VALUE" : t;
}

// Whether the value names a file or directory (for completion): by its description.
bool takes_path(const CLI::Option* opt) {
  const std::string d = opt->get_description();
  for (const char* word : {"file", "File", "dir", "DIR"}) {
    if (d.find(word) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::string man_name(const CLI::App& root, const CLI::App& cmd) {
  return &root == &cmd ? root.get_name() : root.get_name() + "-" + cmd.get_name();
}

// A description without a leading "exitpool: " (the root app's says what it is called).
std::string summary(const CLI::App& root, const CLI::App& cmd) {
  std::string d = cmd.get_description();
  const std::string prefix = root.get_name() + ": ";
  if (d.starts_with(prefix)) {
    d.erase(0, prefix.size());
  }
  return d;
}

std::string upper(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  }
  return s;
}

// Names for roff: every '-' a minus sign, so that copying from the page works.
std::string roff_name(std::string_view s) {
  std::string out;
  for (char c : roff_escape(s)) {
    if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  return out;
}

struct extra_text {
  std::string_view exit_status;
  std::string_view files;
};

// Prose --help does not carry. Exit codes are the ones each command returns.
const std::map<std::string, extra_text, std::less<>>& extras() {
  static const std::map<std::string, extra_text, std::less<>> table{
      {"exitpool",
       {"0 when the command succeeded; 2 for a usage error, a bad config file or pool file. Each subcommand's page "
        "lists its own codes.",
        ""}},
      {"serve",
       {"0 after a clean stop (SIGTERM or SIGINT: drain, then exit), or when --check-config found nothing wrong; 2 "
        "when the configuration, the users file or the pool file is wrong, or a listener cannot be bound (one line "
        "on stderr names the file and line).",
        "/etc/exitpool/exitpool.toml: the packaged service's config (keys are the long option names).\n"
        "/etc/exitpool/pool.txt: the packaged service's pool file; SIGHUP (systemctl reload exitpool) reloads it."}},
      {"fetch",
       {"0 when every URL got a result (errors included); 1 on a fatal error (output not writable, input "
        "unreadable); 2 on usage or pool file errors; 3 when stopped by SIGINT or SIGTERM (run the same command "
        "again to continue).",
        ""}},
      {"crawl",
       {"0 when the crawl ran out of pages (errors included); 1 on a fatal error (output not writable); 2 on usage "
        "errors (no usable seed, an unreadable seeds file, a bad regex or pool file); 3 when stopped by SIGINT or "
        "SIGTERM (run the same command again to continue).",
        ""}},
      {"check", {"0 when every exit passed; 1 when any failed; 2 for a usage error, a bad pool file or URL.", ""}},
      {"bench",
       {"0 when the grid ran and a setting was advised; 1 when no cell qualified (every cell had errors or no "
        "response: the table says why); 2 for a usage error (a bad list names the value), a bad pool file or URL.",
        ""}},
  };
  return table;
}

void man_option(std::string& out, const CLI::Option* opt) {
  out += ".TP\n";
  std::string names;
  for (const auto& s : opt->get_snames()) {
    names += "\\fB" + roff_name("-" + s) + "\\fR, ";
  }
  for (const auto& l : opt->get_lnames()) {
    names += "\\fB" + roff_name("--" + l) + "\\fR, ";
  }
  names.resize(names.size() - 2);
  if (takes_value(opt)) {
    names += " \\fI" + roff_escape(value_label(opt)) + "\\fR";
  }
  out += names + "\n";
  std::string text = opt->get_description();
  if (const auto c = choices(opt); !c.empty()) {
    text += ". One of:";
    for (const auto& v : c) {
      text += " " + v;
    }
  }
  if (!opt->get_default_str().empty()) {
    text += " (default: " + opt->get_default_str() + ")";
  }
  if (takes_value(opt) && opt->get_expected_max() > 1) {
    text += " (repeatable)";
  }
  if (opt->get_required()) {
    text += " (required)";
  }
  out += roff_escape(text) + "\n";
}

void man_section(std::string& out, std::string_view title, std::string_view text) {
  if (text.empty()) {
    return;
  }
  out += ".SH " + std::string(title) + "\n";
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto nl = text.find('\n', start);
    const auto line = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    out += roff_escape(line) + "\n";
    if (nl == std::string_view::npos) {
      break;
    }
    out += ".br\n";
    start = nl + 1;
  }
}

// Single-quoted for sh: ' becomes '\''.
std::string sh_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

// An _arguments description: no ']' or ':' inside [...], and single quotes escaped.
std::string zsh_description(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '[' || c == ']') {
      out += '\\';
      out += c;
    } else if (c == ':') {
      out += "\\:";
    } else if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string roff_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  if (!text.empty() && (text[0] == '.' || text[0] == '\'')) {
    out += "\\&";
  }
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_man(const CLI::App& root, const CLI::App& cmd, std::string_view version) {
  const bool is_root = &root == &cmd;
  const std::string name = man_name(root, cmd);
  std::string out;
  out += ".\\\" Generated by `" + root.get_name() + " help-man " + cmd.get_name() + "` from the CLI definitions.\n";
  out += ".TH " + upper(name) + " 1 \"\" \"" + root.get_name() + " " + std::string(version) + "\" \"User Commands\"\n";
  out += ".SH NAME\n" + roff_name(name) + " \\- " + roff_escape(summary(root, cmd)) + "\n";
  out += ".SH SYNOPSIS\n.B " + root.get_name() + "\n";
  if (is_root) {
    out += "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n.br\n.B " + root.get_name() + "\n\\fB\\-\\-version\\fR\n";
  } else {
    out += "\\fB" + roff_name(cmd.get_name()) + "\\fR [\\fIOPTIONS\\fR]\n";
  }
  out += ".SH DESCRIPTION\n" + roff_escape(summary(root, cmd)) + ".\n";
  if (!is_root) {
    out +=
        "Every long option can also be set in a TOML file given with \\fB\\-\\-config\\fR, as a key of the same "
        "name at the top level or in a [" +
        roff_escape(cmd.get_name()) + "] table; command\\-line options win over the file.\n";
  }
  if (is_root) {
    out += ".SH COMMANDS\n";
    for (const auto* sub : commands(root)) {
      out += ".TP\n\\fB" + roff_name(sub->get_name()) + "\\fR\n" + roff_escape(sub->get_description()) + ".\n";
      out += "See \\fB" + roff_name(man_name(root, *sub)) + "\\fR(1).\n";
    }
  }
  out += ".SH OPTIONS\n";
  for (const auto* opt : options(cmd)) {
    man_option(out, opt);
  }
  const auto& table = extras();
  if (auto it = table.find(is_root ? root.get_name() : cmd.get_name()); it != table.end()) {
    man_section(out, "EXIT STATUS", it->second.exit_status);
    man_section(out, "FILES", it->second.files);
  }
  out += ".SH SEE ALSO\n";
  std::string see;
  if (!is_root) {
    see += "\\fB" + roff_name(root.get_name()) + "\\fR(1), ";
  }
  for (const auto* sub : commands(root)) {
    if (sub != &cmd) {
      see += "\\fB" + roff_name(man_name(root, *sub)) + "\\fR(1), ";
    }
  }
  see.resize(see.size() - 2);
  out += see + "\n";
  return out;
}

std::string render_bash_completion(const CLI::App& root) {
  const std::string fn = "_" + root.get_name();
  std::string subs;
  for (const auto* sub : commands(root)) {
    subs += (subs.empty() ? "" : " ") + sub->get_name();
  }
  std::string out;
  out += "# bash completion for " + root.get_name() + "; generated by `" + root.get_name() +
         " help-completion bash` from the CLI definitions.\n";
  out += fn + "() {\n  local cur prev words cword\n  _init_completion || return\n";
  out += "  if [[ $cword -eq 1 ]]; then\n    COMPREPLY=($(compgen -W " + sh_quote(subs + " --help --version") +
         " -- \"$cur\"))\n    return\n  fi\n";
  out += "  local opts=\n  case ${words[1]} in\n";
  for (const auto* sub : commands(root)) {
    std::string opts;
    std::string paths;
    std::map<std::string, std::vector<std::string>> values;
    for (const auto* opt : options(*sub)) {
      for (const auto& l : opt->get_lnames()) {
        opts += (opts.empty() ? "" : " ") + ("--" + l);
        if (takes_value(opt)) {
          if (auto c = choices(opt); !c.empty()) {
            values["--" + l] = c;
          } else if (takes_path(opt)) {
            paths += (paths.empty() ? "" : "|") + ("--" + l);
          }
        }
      }
    }
    out += "    " + sub->get_name() + ")\n";
    out += "      case $prev in\n";
    if (!paths.empty()) {
      out += "        " + paths + ")\n          _filedir\n          return\n          ;;\n";
    }
    for (const auto& [flag, vals] : values) {
      std::string words;
      for (const auto& v : vals) {
        words += (words.empty() ? "" : " ") + v;
      }
      out += "        " + flag + ")\n          COMPREPLY=($(compgen -W " + sh_quote(words) +
             " -- \"$cur\"))\n          return\n          ;;\n";
    }
    out += "      esac\n      opts=" + sh_quote(opts) + "\n      ;;\n";
  }
  out += "  esac\n  COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n}\n";
  out += "complete -F " + fn + " " + root.get_name() + "\n";
  return out;
}

std::string render_zsh_completion(const CLI::App& root) {
  const std::string name = root.get_name();
  std::string out;
  out += "#compdef " + name + "\n# zsh completion for " + name + "; generated by `" + name +
         " help-completion zsh` from the CLI definitions.\n\n";
  for (const auto* sub : commands(root)) {
    out += "_" + name + "_" + sub->get_name() + "() {\n  _arguments -s \\\n";
    for (const auto* opt : options(*sub)) {
      std::vector<std::string> names;
      for (const auto& s : opt->get_snames()) {
        names.push_back("-" + s);
      }
      for (const auto& l : opt->get_lnames()) {
        names.push_back("--" + l);
      }
      const bool repeat = takes_value(opt) && opt->get_expected_max() > 1;
      std::string action;
      if (takes_value(opt)) {
        const std::string label = value_label(opt);
        if (auto c = choices(opt); !c.empty()) {
          std::string words;
          for (const auto& v : c) {
            words += (words.empty() ? "" : " ") + v;
          }
          action = ":" + label + ":(" + words + ")";
        } else if (takes_path(opt)) {
          action = ":" + label + ":_files";
        } else {
          action = ":" + label + ": ";
        }
      }
      const std::string desc = "[" + zsh_description(opt->get_description()) + "]";
      for (const auto& n : names) {
        out += "    '" + std::string(repeat ? "*" : "") + n + desc + action + "' \\\n";
      }
    }
    out += "\n}\n\n";
  }
  out += "_" + name + "() {\n  local line state\n  _arguments -C \\\n";
  out += "    '(- *)--help[Print this help message and exit]' \\\n";
  out += "    '(- *)--version[Display program version information and exit]' \\\n";
  out += "    '1: :->command' \\\n    '*:: :->args'\n  case $state in\n    command)\n      local -a cmds\n";
  out += "      cmds=(\n";
  for (const auto* sub : commands(root)) {
    out += "        '" + sub->get_name() + ":" + zsh_description(sub->get_description()) + "'\n";
  }
  out += "      )\n      _describe command cmds\n      ;;\n    args)\n      case $line[1] in\n";
  for (const auto* sub : commands(root)) {
    out += "        " + sub->get_name() + ") _" + name + "_" + sub->get_name() + " ;;\n";
  }
  out += "      esac\n      ;;\n  esac\n}\n\n_" + name + " \"$@\"\n";
  return out;
}

void add_doc_commands(CLI::App& app, std::function<int()>& run, std::string version) {
  auto name = std::make_shared<std::string>();
  auto* man = app.add_subcommand("help-man", "Print a manual page (roff) for exitpool or a subcommand");
  man->group("");
  man->add_option("name", *name, "exitpool, or a subcommand's name")->required();
  man->callback([&app, &run, name, version] {
    run = [&app, name, version]() -> int {
      if (*name == app.get_name()) {
        std::fputs(render_man(app, app, version).c_str(), stdout);
        return 0;
      }
      for (const auto* sub : commands(app)) {
        if (sub->get_name() == *name) {
          std::fputs(render_man(app, *sub, version).c_str(), stdout);
          return 0;
        }
      }
      std::fprintf(stderr, "exitpool help-man: no command named '%s'\n", name->c_str());
      return 2;
    };
  });
  auto shell = std::make_shared<std::string>();
  auto* comp = app.add_subcommand("help-completion", "Print a shell completion script");
  comp->group("");
  comp->add_option("shell", *shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));
  comp->callback([&app, &run, shell] {
    run = [&app, shell] {
      const std::string text = *shell == "bash" ? render_bash_completion(app) : render_zsh_completion(app);
      std::fputs(text.c_str(), stdout);
      return 0;
    };
  });
}

}  // namespace exitpool::ops
