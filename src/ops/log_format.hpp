#pragma once
// How `exitpool serve` writes its log: spdlog's coloured text (the default), or one JSON
// object per line for log shippers (`--log-format json`).
//
// JSON lines have stable field names, in this order:
//   ts      UTC time, RFC 3339 with microseconds ("2026-12-01T09:30:00.123456Z")
//   level   trace, debug, info, warn, error, critical
//   logger  the spdlog logger's name ("exitpool")
//   pid     the process id
//   tid     the thread that logged (a shard, the main thread, ...)
//   msg     the message text
// Strings go through fetch::append_json_string: quotes, backslashes and control bytes are
// escaped and bytes that are not UTF-8 become \u00XX, so every line is valid JSON whatever
// a peer managed to put into a message.
// Call init_logging once, on the main thread, before any shard starts.

#include <spdlog/common.h>
#include <spdlog/formatter.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace exitpool::ops {

enum class log_format { text, json };

// "text" or "json"; nullopt for anything else.
std::optional<log_format> parse_log_format(std::string_view name);

// One log record as a JSON object, without the line feed. Pure (the unit tests feed it bytes).
struct log_record {
  std::chrono::system_clock::time_point ts;
  std::string_view level;
  std::string_view logger;
  std::uint64_t pid = 0;
  std::uint64_t tid = 0;
  std::string_view msg;
};
void append_json_record(std::string& out, const log_record& r);

// The spdlog formatter that writes append_json_record lines.
std::unique_ptr<spdlog::formatter> make_json_formatter();

// Makes "exitpool" (stderr; coloured when text and a terminal) the default logger.
void init_logging(log_format format, spdlog::level::level_enum level);

}  // namespace exitpool::ops
