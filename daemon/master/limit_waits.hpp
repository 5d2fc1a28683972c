// SPDX-License-Identifier: MIT
#pragma once
// Episodes of waiting at the limit: the time an accepting process (the master for exec'd
// handlers, forkd-spawner for built-in ones) holds its listeners back for want of room
// (overload=wait at max-connections, or a full scoreboard) while clients queue in the backlog.
// Each episode is logged once when it begins and once when it ends, and counted for status.
#include <cstdint>
#include <optional>
#include <string_view>

namespace forkd {

class LimitWaits {
public:
    // What the log lines name: who waits ("master", "spawner") and the limit it waits at.
    struct Context {
        std::string_view by;
        unsigned limit = 0;
        unsigned active = 0;
    };

    // Waiting or not at now_ns (CLOCK_MONOTONIC); logs and counts the changes only.
    void update(bool waiting, std::int64_t now_ns, const Context& context);

    bool waiting() const { return since_ns_.has_value(); }
    std::uint64_t episodes() const { return episodes_; }
    // Time spent waiting, the current episode's so far included.
    std::uint64_t waited_ms(std::int64_t now_ns) const;

private:
    std::optional<std::int64_t> since_ns_;
    std::uint64_t episodes_ = 0;
    std::int64_t waited_ns_ = 0;
};

} // namespace forkd
