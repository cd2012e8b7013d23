#include "ops/cli_docs.hpp"

#include <gtest/gtest.h>

#include <string>

namespace exitpool::ops {

namespace {

// A small app shaped like exitpool's: a subcommand with flags, values, choices and files.
struct sample {
  CLI::App app{"demo: a sample tool", "demo"};
  std::string pool, mode = "wait";
  std::vector<int> codes{403};
  bool open = false;
  sample() {
    auto* run = app.add_subcommand("run", "Run it, with \\ and 'quotes'");
    run->add_option("--pool", pool, "Pool file, one per line");
    run->add_option("--mode", mode, "What to do")->check(CLI::IsMember({"wait", "move"}))->capture_default_str();
    run->add_option("--code", codes, ".Statuses [banned]: one per flag")->capture_default_str();
    run->add_flag("--open", open, "Allow it");
    run->add_option("--secret", pool, "hidden")->group("");
    app.add_subcommand("hidden", "not shown")->group("");
  }
};

}  // namespace

TEST(cli_docs, roff_escape) {
  EXPECT_EQ(roff_escape("a\\b"), "a\\eb");
  EXPECT_EQ(roff_escape(".TH not a macro"), "\\&.TH not a macro");
  EXPECT_EQ(roff_escape("'quote first"), "\\&'quote first");
  EXPECT_EQ(roff_escape("plain - text"), "plain - text");
}

TEST(cli_docs, man_page_lists_every_visible_option) {
  sample s;
  const auto* run = s.app.get_subcommand("run");
  const auto page = render_man(s.app, *run, "1.2.3");
  EXPECT_TRUE(page.find(".TH DEMO-RUN 1 \"\" \"demo 1.2.3\"") != std::string::npos) << page;
  EXPECT_TRUE(page.find("demo\\-run \\- Run it, with \\e and 'quotes'") != std::string::npos) << page;
  for (const char* flag : {"\\-\\-pool", "\\-\\-mode", "\\-\\-code", "\\-\\-open", "\\-\\-help"}) {
    EXPECT_TRUE(page.find(std::string("\\fB") + flag + "\\fR") != std::string::npos) << flag << "\n" << page;
  }
  EXPECT_TRUE(page.find("One of: wait move (default: wait)") != std::string::npos) << page;
  EXPECT_TRUE(page.find("\\&.Statuses") != std::string::npos) << page;  // a description starting with '.'
  EXPECT_EQ(page.find("secret"), std::string::npos) << page;
  EXPECT_EQ(page.find("hidden"), std::string::npos) << page;
}

TEST(cli_docs, root_page_lists_commands) {
  sample s;
  const auto page = render_man(s.app, s.app, "1.2.3");
  EXPECT_TRUE(page.find("demo \\- a sample tool") != std::string::npos) << page;
  EXPECT_TRUE(page.find("\\fBdemo\\-run\\fR(1)") != std::string::npos) << page;
  EXPECT_EQ(page.find("hidden"), std::string::npos) << page;
}

TEST(cli_docs, bash_completion) {
  sample s;
  const auto text = render_bash_completion(s.app);
  EXPECT_TRUE(text.find("compgen -W 'run --help --version'") != std::string::npos) << text;
  EXPECT_TRUE(text.find("--pool)\n          _filedir") != std::string::npos) << text;
  EXPECT_TRUE(text.find("--mode)\n          COMPREPLY=($(compgen -W 'wait move'") != std::string::npos) << text;
  EXPECT_TRUE(text.find("'--help --pool --mode --code --open'") != std::string::npos) << text;
  EXPECT_TRUE(text.find("complete -F _demo demo") != std::string::npos) << text;
}

TEST(cli_docs, zsh_completion) {
  sample s;
  const auto text = render_zsh_completion(s.app);
  EXPECT_TRUE(text.starts_with("#compdef demo\n")) << text;
  EXPECT_TRUE(text.find("'--pool[Pool file, one per line]:TEXT:_files'") != std::string::npos) << text;
  EXPECT_TRUE(text.find("'--mode[What to do]:TEXT:(wait move)'") != std::string::npos) << text;
  EXPECT_TRUE(text.find("'*--code[.Statuses \\[banned\\]\\: one per flag]:INT: '") != std::string::npos) << text;
  EXPECT_TRUE(text.find("'run:Run it, with \\ and '\\''quotes'\\'''") != std::string::npos) << text;
  EXPECT_EQ(text.find("secret"), std::string::npos) << text;
}

}  // namespace exitpool::ops
