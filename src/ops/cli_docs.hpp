#pragma once
// Manual pages and shell completion rendered from the CLI11 definitions, the same objects
// that print --help: a flag added to a subcommand shows up in all three, so they cannot
// drift. CMake runs the hidden `exitpool help-man NAME` and `exitpool help-completion SHELL`
// at build time (the `docs` target) and installs what they print.
//
// Only visible subcommands and options are documented: hidden ones (empty group, such as
// the help-* commands themselves) are left out. Pure: strings in, strings out.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <string_view>

namespace exitpool::ops {

// roff for man(7): exitpool(1) when `cmd` is the root app, exitpool-NAME(1) for a subcommand.
std::string render_man(const CLI::App& root, const CLI::App& cmd, std::string_view version);

// Completion scripts: bash (for bash-completion's completions/ dir) and zsh (a #compdef file).
std::string render_bash_completion(const CLI::App& root);
std::string render_zsh_completion(const CLI::App& root);

// `text` escaped for a roff text line: backslashes, and a leading '.' or '\''.
std::string roff_escape(std::string_view text);

// Adds the hidden subcommands `help-man NAME` (NAME: exitpool or a subcommand) and
// `help-completion bash|zsh` to `app`; call after every visible subcommand is added.
void add_doc_commands(CLI::App& app, std::function<int()>& run, std::string version);

}  // namespace exitpool::ops
