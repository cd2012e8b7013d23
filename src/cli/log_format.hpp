#pragma once
// The gateway's log line format: spdlog's default pattern, with control bytes in the
// message written as \xHH (proto::escape_controls). Client text is clipped where it is
// formatted (proto::clip); this is the backstop that keeps every log record on one line,
// whatever reached it, so no client can forge a line of its own (CR/LF in a SOCKS5 user
// name, a password-borne option, a host).
//
// Install once at startup, before the shards run (spdlog::set_formatter is global).

#include <spdlog/formatter.h>

#include <memory>

namespace exitpool::cli {

std::unique_ptr<spdlog::formatter> escaping_log_formatter();

}  // namespace exitpool::cli
