// SPDX-License-Identifier: MIT
#pragma once
// sd_notify messages; all are no-ops when NOTIFY_SOCKET is unset. The watchdog is kept by
// sd_event_set_watchdog() in the loop, not here.
#include <string_view>

namespace forkd::notify {

void ready();
void reloading();   // RELOADING=1 with MONOTONIC_USEC
void stopping();
void status(std::string_view text);  // sent only when it changed since the last call

} // namespace forkd::notify
