// SPDX-License-Identifier: MIT
#include "daemon/master/agent_reply.hpp"

namespace forkd {

std::string agent_line(const AgentFacts& facts) {
    if (facts.state == "stopping") return "down";
    if (facts.state == "draining") return "drain";
    unsigned percent = 100;
    if (facts.max_connections) {
        const std::uint64_t max = facts.max_connections;
        const std::uint64_t free = facts.active >= max ? 0 : max - facts.active;
        percent = unsigned(free * 100 / max);
        if (free && percent == 0) percent = 1;
    }
    return "up ready " + std::to_string(percent) + "%";
}

} // namespace forkd
