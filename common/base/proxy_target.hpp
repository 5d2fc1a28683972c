// SPDX-License-Identifier: MIT
#pragma once
// Where `handler = proxy` forwards to, as `proxy-to` writes it: HOST:PORT, [V6]:PORT or
// unix:PATH. In base (libc only) because the config checks it and forkd-spawner and the event
// workers, which link nothing of the configuration code, read it again from the text the master
// sends them. Turning it into a socket address is daemon/proxy/proxy_address.hpp's job.
#include "common/base/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace forkd {

struct ProxyTarget {
    std::string host;        // TCP: a literal address (IPv6 without brackets) or a host name
    std::uint16_t port = 0;  // TCP: 1..65535
    std::string path;        // unix:PATH: absolute; empty for TCP

    bool is_unix() const { return !path.empty(); }
    bool operator==(const ProxyTarget&) const = default;
};

// Failure context is the reason alone ("missing port", "port out of range", "UNIX socket path
// must be absolute"); the caller names the option and where it was written.
Result<ProxyTarget> parse_proxy_target(std::string_view text);
// The canonical text: "127.0.0.1:7", "[::1]:7", "backend.example:80", "unix:/run/x.sock".
std::string proxy_target_text(const ProxyTarget& target);

} // namespace forkd
