#pragma once
// systemd's readiness protocol (sd_notify(3)), written here rather than linked from
// libsystemd: it is one datagram of "KEY=VALUE\n" lines to the unix socket named by
// $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace), a protocol systemd
// documents as stable. Forty lines save the package a runtime dependency and keep the
// binary usable where libsystemd is absent. Without $NOTIFY_SOCKET every call is a no-op,
// so the gateway run by hand, by the tests or by another supervisor is unchanged.
//
// Who may call: any thread (each call opens, sends and closes its own socket).
// `exitpool serve` sends READY=1 once its listeners are bound, RELOADING=1 then READY=1
// around a pool reload (SIGHUP, --watch), STOPPING=1 when a drain starts, and WATCHDOG=1
// every half $WATCHDOG_USEC while the main loop and every shard answer.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>

namespace exitpool::ops {

// Sends `state` ("READY=1", "WATCHDOG=1", several lines at once...) to $NOTIFY_SOCKET.
// True when it was sent; false when the variable is unset or empty, or the send failed.
bool sd_notify(std::string_view state);

// Sends `state` to the socket `address` (a path, or "@name"). The part sd_notify uses.
bool notify_to(std::string_view address, std::string_view state);

// The watchdog interval systemd asked for, zero when none: $WATCHDOG_USEC, if
// $WATCHDOG_PID is unset or names this process.
std::chrono::microseconds watchdog_interval();

// Pure part of watchdog_interval: the two variables (null when unset) and our pid.
std::chrono::microseconds parse_watchdog(const char* usec, const char* pid, pid_t self);

// "RELOADING=1" with MONOTONIC_USEC=now, which systemd >= 253 wants with RELOADING=1.
std::string reloading_state();

}  // namespace exitpool::ops
