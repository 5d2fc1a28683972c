// SPDX-License-Identifier: MIT
#pragma once
// Listen addresses as written by admins, and peer addresses as printed in logs and status.
#include <sys/socket.h>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace forkd {

struct TcpAddress {
    std::string host;   // literal IPv4/IPv6 address or host name; empty when any
    std::uint16_t port = 0;
    bool any = false;   // "*:PORT": all addresses, v4 and v6 (one dual-stack socket)
};
struct UnixAddress { std::string path; };
struct SystemdSockets {};  // "systemd": sockets passed by socket activation

using ListenAddress = std::variant<TcpAddress, UnixAddress, SystemdSockets>;

// Parses HOST:PORT, [V6]:PORT, *:PORT, unix:PATH, systemd. Throws std::invalid_argument
// with a one-line reason ("missing port", "port out of range", "UNIX path too long").
ListenAddress parse_listen_address(std::string_view text);
// The canonical text of a parsed address ("127.0.0.1:7007", "[::1]:7", "*:7", "unix:/p", "systemd").
std::string to_string(const ListenAddress& address);

// "127.0.0.1:5555", "[::1]:5555", "unix:/path" (or "unix" for an unnamed peer).
std::string format_sockaddr(const sockaddr* sa, socklen_t len);
// Only the host part: "127.0.0.1", "::1" (v4-mapped v6 shown as v4), "" for UNIX.
std::string host_of(const sockaddr* sa, socklen_t len);
std::uint16_t port_of(const sockaddr* sa, socklen_t len);

} // namespace forkd
