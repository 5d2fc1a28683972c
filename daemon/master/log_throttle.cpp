// SPDX-License-Identifier: MIT
#include "daemon/master/log_throttle.hpp"

#include "common/log.hpp"

namespace forkd {

bool LogThrottle::allow(std::string_view event, std::int64_t now_ns) {
    auto it = windows_.find(event);
    if (it == windows_.end()) it = windows_.emplace(std::string(event), Window{now_ns}).first;
    Window& window = it->second;
    if (now_ns - window.start_ns >= interval_ns_) close_window(it->first, window, now_ns);
    if (window.written < lines_) {
        ++window.written;
        return true;
    }
    ++window.suppressed;
    return false;
}

void LogThrottle::flush(std::int64_t now_ns) {
    for (auto& [event, window] : windows_)
        if (window.suppressed && now_ns - window.start_ns >= interval_ns_) close_window(event, window, now_ns);
}

void LogThrottle::close_window(const std::string& event, Window& window, std::int64_t now_ns) {
    if (window.suppressed)
        log::warning(event + "-suppressed", {{"count", window.suppressed},
                                             {"interval_ms", (now_ns - window.start_ns) / 1000000}});
    window = Window{now_ns};
}

} // namespace forkd
