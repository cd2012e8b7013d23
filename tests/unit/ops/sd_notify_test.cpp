#include "ops/sd_notify.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

namespace exitpool::ops {

namespace {

// A datagram socket bound to `address` (a path, or "@name"), as systemd's NOTIFY_SOCKET is.
struct listener {
  int fd = -1;
  explicit listener(const std::string& address) {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, address.data(), address.size());
    if (address[0] == '@') {
      sa.sun_path[0] = '\0';
    }
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
    EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&sa), len), 0) << std::strerror(errno);
    timeval tv{.tv_sec = 2, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~listener() { ::close(fd); }
  std::string receive() const {
    char buf[512];
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    return n < 0 ? std::string("<nothing>") : std::string(buf, static_cast<std::size_t>(n));
  }
};

}  // namespace

TEST(sd_notify, sends_to_a_path) {
  const auto path = std::filesystem::temp_directory_path() / ("exitpool-notify-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  listener l(path.string());
  EXPECT_TRUE(notify_to(path.string(), "READY=1"));
  EXPECT_EQ(l.receive(), "READY=1");
  EXPECT_TRUE(notify_to(path.string(), "RELOADING=1\nMONOTONIC_USEC=5"));
  EXPECT_EQ(l.receive(), "RELOADING=1\nMONOTONIC_USEC=5");
  std::filesystem::remove(path);
}

TEST(sd_notify, sends_to_an_abstract_name) {
  const std::string name = "@exitpool-notify-test-" + std::to_string(::getpid());
  listener l(name);
  EXPECT_TRUE(notify_to(name, "WATCHDOG=1"));
  EXPECT_EQ(l.receive(), "WATCHDOG=1");
}

TEST(sd_notify, refuses_what_is_not_a_socket_address) {
  EXPECT_FALSE(notify_to("", "READY=1"));
  EXPECT_FALSE(notify_to("relative/path", "READY=1"));
  EXPECT_FALSE(notify_to("/" + std::string(200, 'x'), "READY=1"));  // longer than sun_path
  EXPECT_FALSE(notify_to("/nonexistent/exitpool.sock", "READY=1"));
}

TEST(sd_notify, without_notify_socket_it_is_a_no_op) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(sd_notify("READY=1"));
}

TEST(sd_notify, watchdog_interval) {
  using us = std::chrono::microseconds;
  EXPECT_EQ(parse_watchdog(nullptr, nullptr, 10), us(0));
  EXPECT_EQ(parse_watchdog("30000000", nullptr, 10), us(30000000));
  EXPECT_EQ(parse_watchdog("30000000", "10", 10), us(30000000));
  EXPECT_EQ(parse_watchdog("30000000", "11", 10), us(0));  // for another process
  EXPECT_EQ(parse_watchdog("0", nullptr, 10), us(0));
  EXPECT_EQ(parse_watchdog("30s", nullptr, 10), us(0));
  EXPECT_EQ(parse_watchdog("", nullptr, 10), us(0));
  EXPECT_EQ(parse_watchdog("5", "x", 10), us(0));
}

TEST(sd_notify, reloading_state_carries_monotonic_usec) {
  const auto s = reloading_state();
  EXPECT_TRUE(s.starts_with("RELOADING=1\nMONOTONIC_USEC=")) << s;
  EXPECT_GT(s.size(), std::string("RELOADING=1\nMONOTONIC_USEC=").size());
}

}  // namespace exitpool::ops
