// SPDX-License-Identifier: MIT
#pragma once
// What forkd's HAProxy agent-check responder answers (agent-listen), from plain facts: one line,
// "up ready N%" while running, "drain" while draining, "down" while stopping. N is the share of
// max-connections still free, at least 1 while there is room (0% would make HAProxy send
// nothing), 100 when there is no limit. forkctl status shows the same line as "agent".
#include <cstdint>
#include <string>
#include <string_view>

namespace forkd {

struct AgentFacts {
    std::string_view state = "running";  // running, draining, stopping
    std::uint32_t active = 0;
    std::uint32_t max_connections = 0;   // 0: unlimited
};

// Without its newline.
std::string agent_line(const AgentFacts& facts);

} // namespace forkd
