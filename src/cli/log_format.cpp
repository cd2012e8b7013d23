#include "cli/log_format.hpp"

#include <spdlog/pattern_formatter.h>

#include <string>
#include <string_view>

#include "proto/text.hpp"

namespace exitpool::cli {

namespace {

class escaping_formatter final : public spdlog::formatter {
 public:
  explicit escaping_formatter(std::unique_ptr<spdlog::formatter> inner) : inner_(std::move(inner)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (!proto::has_control(payload)) {
      inner_->format(msg, dest);  // the usual case: no copy
      return;
    }
    std::string escaped;
    escaped.reserve(payload.size() + 16);
    proto::escape_controls(payload, escaped);
    spdlog::details::log_msg copy(msg);
    copy.payload = spdlog::string_view_t(escaped.data(), escaped.size());
    inner_->format(copy, dest);
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<escaping_formatter>(inner_->clone());
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
};

}  // namespace

std::unique_ptr<spdlog::formatter> escaping_log_formatter() {
  return std::make_unique<escaping_formatter>(std::make_unique<spdlog::pattern_formatter>());
}

}  // namespace exitpool::cli
