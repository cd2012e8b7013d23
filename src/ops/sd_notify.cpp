#include "ops/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace exitpool::ops {

namespace {

std::uint64_t parse_u64(const char* s, bool& ok) {
  std::uint64_t v = 0;
  const std::string_view sv(s);
  auto [p, ec] = std::from_chars(sv.data(), sv.data() + sv.size(), v);
  ok = ec == std::errc{} && p == sv.data() + sv.size() && !sv.empty();
  return v;
}

}  // namespace

bool notify_to(std::string_view address, std::string_view state) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (address.empty() || address.size() >= sizeof(sa.sun_path) || (address[0] != '/' && address[0] != '@')) {
    return false;
  }
  std::memcpy(sa.sun_path, address.data(), address.size());
  if (address[0] == '@') {
    sa.sun_path[0] = '\0';  // abstract namespace: the name is the bytes after the NUL, not NUL-terminated
  }
  const auto len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + (address[0] == '@' ? 0 : 1));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  const auto sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&sa), len);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

bool sd_notify(std::string_view state) {
  const char* address = std::getenv("NOTIFY_SOCKET");
  if (address == nullptr || *address == '\0') {
    return false;
  }
  return notify_to(address, state);
}

std::chrono::microseconds parse_watchdog(const char* usec, const char* pid, pid_t self) {
  if (usec == nullptr) {
    return {};
  }
  bool ok = false;
  const auto us = parse_u64(usec, ok);
  if (!ok || us == 0) {
    return {};
  }
  if (pid != nullptr) {
    const auto p = parse_u64(pid, ok);
    if (!ok || p != static_cast<std::uint64_t>(self)) {
      return {};  // meant for another process (e.g. our parent, a shell script)
    }
  }
  return std::chrono::microseconds(static_cast<std::int64_t>(us));
}

std::chrono::microseconds watchdog_interval() {
  return parse_watchdog(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), ::getpid());
}

std::string reloading_state() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<std::uint64_t>(ts.tv_sec) * 1000000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

}  // namespace exitpool::ops
