#pragma once
// The small amount of JSON `fetch` needs, by hand: an escaper for the result lines it
// writes, and, for resume, a structural check of a line and a reader of its "url".
// Pure functions.
//
// Strings are byte strings: valid UTF-8 passes through, control characters and bytes
// that are not valid UTF-8 are written as \u00XX. read_url_field maps \u00XX back to
// the byte XX, so any URL (even one with stray Latin-1 bytes) survives the round trip
// exactly, and its fingerprint after a resume is the one it had when it was written.

#include <optional>
#include <string>
#include <string_view>

namespace exitpool::fetch {

// Appends `s` as a quoted JSON string.
void append_json_string(std::string& out, std::string_view s);

// Valid UTF-8 (no overlongs, no surrogates): a body that may be written as text.
bool valid_utf8(std::string_view s);

// True when `line` (without its '\n') is one complete JSON object: braces and brackets
// balance outside strings, strings close, and nothing follows the closing brace. Not a
// full validator: enough to tell a whole result line from a torn one.
bool complete_object(std::string_view line);

// The value of the first member of `line`, when that member is "url" (fetch writes it
// first); nullopt otherwise.
std::optional<std::string> read_url_field(std::string_view line);

// The JSON string that starts at line[pos] (its opening quote), unescaped as
// read_url_field does; on success `pos` is moved past its closing quote.
std::optional<std::string> read_json_string(std::string_view line, std::size_t& pos);

}  // namespace exitpool::fetch
