// SPDX-License-Identifier: MIT
#pragma once
// handler = proxy in fork mode: the forked child serves its one connection with a ProxySession
// on an event base of its own and returns its exit code (proxy_exit.hpp).
#include "daemon/proxy/proxy_session.hpp"

#include <cstdint>

namespace forkd {

class Scoreboard;

struct ProxyChildContext {
    int fd = -1;                          // the client; the session takes it
    const char* proxy_to = "";            // proxy-to as written (checked by the config)
    const ProxyEndpoint* resolved = nullptr;  // the spawner resolved a literal already; else looked up here
    std::uint32_t buffer_size = 65536;
    unsigned connect_timeout_s = 10;
    unsigned idle_timeout_s = 0;
    Scoreboard* scoreboard = nullptr;     // traffic into the connection's slot
    std::uint32_t slot = 0;
};

int run_proxy_child(const ProxyChildContext& context);

// The exit code for a session's result.
int proxy_exit_code(const ProxySessionResult& result);

} // namespace forkd
