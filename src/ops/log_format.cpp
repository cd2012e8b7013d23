#include "ops/log_format.hpp"

#include <fmt/format.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <ctime>

#include "fetch/json_line.hpp"

namespace exitpool::ops {

namespace {

void append_timestamp(std::string& out, std::chrono::system_clock::time_point ts) {
  const auto since = ts.time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since - secs).count();
  if (micros < 0) {  // before 1970: floor, so that the fraction stays in [0, 1 s)
    secs -= std::chrono::seconds(1);
    micros += 1000000;
  }
  const std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    line_.clear();
    const auto level = spdlog::level::to_string_view(msg.level);
    append_json_record(line_, {.ts = msg.time,
                               .level = std::string_view(level.data(), level.size()),
                               .logger = std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                               .pid = pid_,
                               .tid = msg.thread_id,
                               .msg = std::string_view(msg.payload.data(), msg.payload.size())});
    line_ += '\n';
    dest.append(line_.data(), line_.data() + line_.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }

 private:
  std::uint64_t pid_ = static_cast<std::uint64_t>(::getpid());
  std::string line_;  // reused: one formatter per sink, called under the sink's lock
};

}  // namespace

std::optional<log_format> parse_log_format(std::string_view name) {
  if (name == "text") {
    return log_format::text;
  }
  if (name == "json") {
    return log_format::json;
  }
  return std::nullopt;
}

void append_json_record(std::string& out, const log_record& r) {
  out += "{\"ts\":\"";
  append_timestamp(out, r.ts);
  out += "\",\"level\":";
  fetch::append_json_string(out, r.level);
  out += ",\"logger\":";
  fetch::append_json_string(out, r.logger);
  fmt::format_to(std::back_inserter(out), ",\"pid\":{},\"tid\":{},\"msg\":", r.pid, r.tid);
  fetch::append_json_string(out, r.msg);
  out += '}';
}

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<json_formatter>();
}

void init_logging(log_format format, spdlog::level::level_enum level) {
  std::shared_ptr<spdlog::logger> logger;
  if (format == log_format::json) {
    // Plain stderr: colour codes would land inside the JSON.
    logger = spdlog::stderr_logger_mt("exitpool");
    logger->set_formatter(make_json_formatter());
  } else {
    logger = spdlog::stderr_color_mt("exitpool");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
}

}  // namespace exitpool::ops
