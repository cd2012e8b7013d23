#pragma once
// Small text helpers shared by the codecs (ASCII only: protocol text, not prose).
#include <string>
#include <string_view>

namespace exitpool::proto {

// ASCII lower-case copy.
std::string lower(std::string_view s);
// 0..15 for a hex digit, -1 otherwise.
int hex_value(char c);
// Whether `s` is exactly an IPv4 / IPv6 address literal (no brackets, no port).
bool valid_ipv4(std::string_view s);
bool valid_ipv6(std::string_view s);
// `text` with every control byte (< 0x20, 0x7f) replaced by a space: safe for one line
// of a log, a header value or a label.
std::string printable(std::string_view text);
// printable(text) as an RFC 9110 quoted-string ("a \"b\"").
std::string quoted(std::string_view text);
// The one way client-controlled text (user names, options, hosts, targets, header
// values) enters a log line, an error text (X-Exitpool-Error), a header or a metric
// label: control bytes (< 0x20, 0x7f) written as \xHH, so CR and LF never start a line
// of their own, and cut to `max` bytes of the input with "..." after. Error texts are
// sanitised again when rendered (printable); the gateway's log formatter escapes the
// same way (cli/log_format.hpp), so a raw string slipping through stays on its line.
std::string clip(std::string_view text, std::size_t max = 128);
// Appends `text` to `out` with control bytes written as \xHH (clip without the cut).
void escape_controls(std::string_view text, std::string& out);
// Whether `text` holds a control byte (< 0x20, 0x7f).
bool has_control(std::string_view text);
// RFC 3986 percent-encoding of every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~):
// a user, password or key put into a URL.
std::string percent_encode(std::string_view s);
// Equality in time that depends on the length only (passwords, tokens).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace exitpool::proto
