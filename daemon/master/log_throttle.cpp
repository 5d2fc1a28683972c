// SPDX-License-Identifier: MIT
#include "daemon/master/log_throttle.hpp"

#include "common/log.hpp"

namespace forkd {

namespace {

constexpr char reason_separator = '\x1f';

} // namespace

LogThrottle::Window& LogThrottle::window_of(std::string_view event, std::int64_t now_ns, std::string_view reason) {
    // Without a reason the key is the event itself: no string is built per call.
    std::string keyed;
    std::string_view key = event;
    if (!reason.empty()) {
        keyed.reserve(event.size() + 1 + reason.size());
        keyed.append(event).append(1, reason_separator).append(reason);
        key = keyed;
    }
    auto it = windows_.find(key);
    if (it == windows_.end()) it = windows_.emplace(std::string(key), Window{now_ns}).first;
    Window& window = it->second;
    if (now_ns - window.start_ns >= interval_ns_) close_window(it->first, window, now_ns);
    return window;
}

void LogThrottle::add_suppressed(std::string_view event, std::int64_t now_ns, std::string_view reason,
                                 std::uint64_t count) {
    window_of(event, now_ns, reason).suppressed += count;
}

bool LogThrottle::allow(std::string_view event, std::int64_t now_ns, std::string_view reason) {
    Window& window = window_of(event, now_ns, reason);
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

void LogThrottle::close_window(const std::string& key, Window& window, std::int64_t now_ns) {
    const std::size_t cut = key.find(reason_separator);
    const std::int64_t interval_ms = (now_ns - window.start_ns) / 1000000;
    if (window.suppressed && cut == std::string::npos)
        log::warning(key + "-suppressed", {{"count", window.suppressed}, {"interval_ms", interval_ms}});
    if (window.suppressed && cut != std::string::npos)
        log::warning(key.substr(0, cut) + "-suppressed", {{"reason", key.substr(cut + 1)},
                                                          {"count", window.suppressed},
                                                          {"interval_ms", interval_ms}});
    window = Window{now_ns};
}

} // namespace forkd
