// SPDX-License-Identifier: MIT
#pragma once
// What the master knows of one accepted connection, handed to whatever runs its handler.
#include <sys/socket.h>
#include <cstdint>
#include <optional>
#include <string>

namespace forkd {

struct ConnectionInfo {
    std::uint64_t id = 0;            // FORKD_CONNECTION_ID; unique for the daemon's life
    std::uint32_t slot = 0;          // scoreboard slot
    bool is_unix = false;
    sockaddr_storage local{};
    socklen_t local_len = 0;
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
    std::optional<ucred> peer_cred;  // UNIX listeners: SO_PEERCRED of the client
    std::string peer_text;           // "127.0.0.1:5555", "[::1]:5555", "unix:uid=1000,pid=42"
    std::string source;              // per-source key: client IP, or "uid:N" on UNIX listeners
    // proxy-protocol: the balancer that sent the PROXY header (peer is then the header's
    // source, unless it was LOCAL/UNKNOWN); FORKD_PROXY_IP and FORKD_PROXY_PORT.
    std::optional<sockaddr_storage> proxy;
    socklen_t proxy_len = 0;
};

} // namespace forkd
