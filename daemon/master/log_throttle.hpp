// SPDX-License-Identifier: MIT
#pragma once
// Per-connection failures and refusals under a flood (a fork that fails for every client, a
// listener out of descriptors, a storm of refusals): each event writes at most a few lines per
// interval, and what it left out is summarised in one line when the interval is over,
//   event=NAME-suppressed count=N interval_ms=M
// or, for an event counted by kind (refusals by reason),
//   event=NAME-suppressed reason=KIND count=N interval_ms=M
// The counters (status) stay exact; only the log is thinned.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace forkd {

class LogThrottle {
public:
    static constexpr unsigned default_lines = 10;
    static constexpr std::int64_t default_interval_ns = 1000000000;

    explicit LogThrottle(unsigned lines_per_interval = default_lines,
                         std::int64_t interval_ns = default_interval_ns)
        : lines_(lines_per_interval), interval_ns_(interval_ns) {}

    // Whether a line of `event` may be written at now_ns (CLOCK_MONOTONIC); if not, it is counted
    // for the summary.
    bool allow(std::string_view event, std::int64_t now_ns, std::string_view reason = {});
    // Events that were never offered one by one (forkd-spawner counted them for want of room to
    // report each): added to the current interval's summary.
    void add_suppressed(std::string_view event, std::int64_t now_ns, std::string_view reason,
                        std::uint64_t count);
    // Writes the summaries of intervals that are over (housekeeping calls it once a second, so
    // a flood that stops is still summarised).
    void flush(std::int64_t now_ns);

private:
    struct Window {
        std::int64_t start_ns = 0;
        unsigned written = 0;
        std::uint64_t suppressed = 0;
    };
    Window& window_of(std::string_view event, std::int64_t now_ns, std::string_view reason);
    void close_window(const std::string& key, Window& window, std::int64_t now_ns);

    unsigned lines_;
    std::int64_t interval_ns_;
    std::map<std::string, Window, std::less<>> windows_;  // by event name, or "NAME\x1fREASON"
};

} // namespace forkd
