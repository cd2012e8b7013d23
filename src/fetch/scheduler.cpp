#include "fetch/scheduler.hpp"

namespace exitpool::fetch {

void aimd_window::update(const throttle_signal& s, time_point now, int cap_in) {
  const double cap = cap_in;
  if (ssthresh_ == 0) {
    ssthresh_ = cap;
  }
  if (s.overload) {
    const auto recent = std::chrono::microseconds(std::max<std::int64_t>(100000, base_us_ * 4));
    if (now - last_decrease_ > recent) {
      cwnd_ = std::max(1.0, cwnd_ / 2);
      ssthresh_ = std::max(1.0, cwnd_);
      last_decrease_ = now;
    }
    return;
  }
  if (!s.ok) {
    return;
  }
  base_us_ = base_us_ < 0 ? s.ttfb_us : std::min(base_us_, s.ttfb_us);
  if (s.ttfb_us > 4 * base_us_ + 20000) {
    cwnd_ = std::max(1.0, cwnd_ - 1.0 / cwnd_);
  } else if (cwnd_ < ssthresh_) {
    cwnd_ += 1;
  } else {
    cwnd_ += 1.0 / cwnd_;
  }
  cwnd_ = std::min(cwnd_, cap);
}

}  // namespace exitpool::fetch
