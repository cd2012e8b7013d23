// libFuzzer target: pool files (parse_pool_text, parse_pool_line). Errors are pool_error
// with what() = "FILE:LINE: message"; accepted exits re-parse alike line by line; and a
// password put into a line never shows in an error message or a redacted URL.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "proto/pool_line.hpp"

namespace {

using namespace exitpool::proto;
using exitpool::fuzz::as_view;

constexpr std::string_view file_name = "fuzz-pool.txt";
constexpr std::string_view secret = "Zq7SECRETzQ";

std::size_t count_lines(std::string_view text) {
  std::size_t n = 1;
  for (char c : text) {
    n += c == '\n' ? 1 : 0;
  }
  return n;
}

void check_error_text(const std::string& what, std::size_t lines) {
  FUZZ_CHECK(what.starts_with(std::string(file_name) + ":"));
  std::size_t i = file_name.size() + 1;
  std::size_t line = 0;
  std::size_t digits = 0;
  while (i < what.size() && what[i] >= '0' && what[i] <= '9' && digits < 12) {
    line = line * 10 + static_cast<std::size_t>(what[i] - '0');
    ++i;
    ++digits;
  }
  FUZZ_CHECK(digits > 0 && line >= 1 && line <= lines);
  FUZZ_CHECK(what.compare(i, 2, ": ") == 0 && what.size() > i + 2);
}

// The first line's first word, with a password that cannot occur in any message:
// as URL userinfo ("scheme://user:SECRET@...") or as the vendor format's last field.
void check_secret_hidden(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (line.find(secret) != std::string_view::npos) {
    return;
  }
  const auto start = line.find_first_not_of(" \t\r\f\v");
  if (start == std::string_view::npos) {
    return;
  }
  const auto end = line.find_first_of(" \t\r\f\v", start);
  const std::string word(line.substr(start, end == std::string_view::npos ? end : end - start));
  const std::string tail(end == std::string_view::npos ? std::string_view{} : line.substr(end));
  std::string with_secret;
  if (const auto sep = word.find("://"); sep != std::string::npos) {
    with_secret = word.substr(0, sep + 3) + "user:" + std::string(secret) + "@" + word.substr(sep + 3);
  } else {
    with_secret = word + ":user:" + std::string(secret);
  }
  const auto r = parse_pool_line(with_secret + tail);
  FUZZ_CHECK(r.error.find(secret) == std::string::npos);
  if (r.spec) {
    FUZZ_CHECK(redacted_url(*r.spec).find(secret) == std::string::npos);
    FUZZ_CHECK(r.spec->id.find(secret) == std::string::npos || r.spec->user.find(secret) != std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = as_view(data, size);
  check_secret_hidden(text);
  std::vector<exit_spec> exits;
  try {
    exits = parse_pool_text(text, file_name);
  } catch (const pool_error& e) {
    check_error_text(e.what(), count_lines(text));
    return 0;
  }
  FUZZ_CHECK(!exits.empty());
  std::size_t last_line = 0;
  for (const auto& spec : exits) {
    FUZZ_CHECK(!spec.id.empty());
    FUZZ_CHECK(spec.line > last_line);
    last_line = spec.line;
    FUZZ_CHECK(spec.weight > 0);
    FUZZ_CHECK((spec.scheme == exit_scheme::direct) == (spec.port == 0));
    const auto url = redacted_url(spec);
    FUZZ_CHECK(url.starts_with(scheme_name(spec.scheme)));
    if (!spec.pass.empty()) {
      FUZZ_CHECK(url.find(":***@") != std::string::npos);
    }
    (void)default_exit_id(spec);
  }
  // The first exit again, from its line alone.
  std::size_t pos = 0;
  for (std::size_t n = 1; n < exits.front().line; ++n) {
    pos = text.find('\n', pos) + 1;
  }
  const auto one = parse_pool_line(text.substr(pos, text.find('\n', pos) - pos));
  FUZZ_CHECK(one.spec && one.error.empty());
  FUZZ_CHECK(one.spec->id == exits.front().id && one.spec->host == exits.front().host);
  FUZZ_CHECK(one.spec->port == exits.front().port && one.spec->pass == exits.front().pass);
  return 0;
}
