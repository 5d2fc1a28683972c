// SPDX-License-Identifier: MIT
#pragma once
// The replies to "status" and "list" (the fields are fixed by the interface contract), rendered
// from plain facts so that the shape is testable without a daemon.
#include "common/config/config.hpp"
#include "daemon/core/scoreboard.hpp"
#include "daemon/master/connection_totals.hpp"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace forkd {

struct StatusFacts {
    pid_t pid = 0;
    std::optional<std::string> instance;
    std::string_view state = "running";   // running, draining, stopping
    std::string agent;                    // what the agent-check responder answers now
    bool accepting = false;
    std::uint32_t active = 0;
    std::int64_t uptime_s = 0;
    RuntimeLimits limits;
    std::vector<std::string> listen;      // bound addresses
    HandlerKind handler = HandlerKind::echo;
    std::vector<std::string> exec_argv;   // an exec'd handler's program and arguments
    std::optional<std::string> user, group;  // whom handlers run as (none: forkd's own)
    std::string config_file;
    std::size_t capacity = 0;
    std::optional<pid_t> spawner_pid;     // none while it is not running
    ServeMode mode = ServeMode::fork;
    struct Worker {
        pid_t pid = 0;
        std::size_t active = 0;
        std::uint64_t accepted = 0;
    };
    std::vector<Worker> workers;          // event mode's forkd-worker processes
    ConnectionTotals totals;
    std::uint32_t generation = 0;              // live upgrades so far
    std::optional<std::string> upgrade_error;  // why the last upgrade's execve failed
    struct LimitWaits {
        std::uint64_t episodes = 0;   // times accepting waited at the limit
        std::uint64_t waited_ms = 0;  // in all, the current wait included
    } limit_waits;
};

nlohmann::json render_status(const StatusFacts& facts);

// One row per slot in use, by connection id; ages from now_ns (monotonic).
nlohmann::json render_list(std::span<const SlotView> slots, std::int64_t now_ns);

} // namespace forkd
