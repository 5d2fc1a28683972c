// SPDX-License-Identifier: MIT
#include "daemon/event_loop/callback_guard.hpp"

#include "common/log.hpp"

namespace forkd::event_loop {

void log_callback_failure(sd_event_source* source, const char* error) noexcept {
    const char* name = nullptr;
    if (!source || sd_event_source_get_description(source, &name) < 0 || !name) name = "unnamed";
    // Logging itself allocates: if even that fails there is nothing left to tell anyone.
    try {
        log::err("callback-failed", {{"source", name}, {"error", error}});
    } catch (...) {
    }
}

} // namespace forkd::event_loop
