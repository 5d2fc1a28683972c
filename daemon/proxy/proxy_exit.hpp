// SPDX-License-Identifier: MIT
#pragma once
// How a fork-mode proxy child tells the master how its connection ended: its exit code. 0 and 2
// mean what they mean for every built-in handler (completed, idle-timeout:
// daemon/handlers/builtin_handlers.hpp); the codes from 3 say the connection failed and why,
// and the master logs that reason on the connection's end line (reason="connect refused") and
// counts it failed. Header-only: the master reads these without linking libevent.
#include <string_view>

namespace forkd {

inline constexpr int proxy_exit_completed = 0;
inline constexpr int proxy_exit_idle = 2;  // = builtin_exit_idle
inline constexpr int proxy_exit_refused = 3;
inline constexpr int proxy_exit_connect_timeout = 4;
inline constexpr int proxy_exit_unreachable = 5;
inline constexpr int proxy_exit_resolve_failed = 6;
inline constexpr int proxy_exit_connect_failed = 7;
inline constexpr int proxy_exit_transfer_error = 8;

// The reason a failure code stands for; "" for any other code.
constexpr std::string_view proxy_failure_reason(int exit_code) {
    switch (exit_code) {
    case proxy_exit_refused: return "connect refused";
    case proxy_exit_connect_timeout: return "connect timeout";
    case proxy_exit_unreachable: return "unreachable";
    case proxy_exit_resolve_failed: return "resolve failed";
    case proxy_exit_connect_failed: return "connect failed";
    case proxy_exit_transfer_error: return "transfer error";
    default: return "";
    }
}

} // namespace forkd
