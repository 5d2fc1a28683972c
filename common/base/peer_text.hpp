// SPDX-License-Identifier: MIT
#pragma once
// Socket addresses and clients as logs and "forkctl list" name them, written into a caller's
// buffer without allocating: forkd-spawner names each client in its scoreboard slot between two
// forks, and must name it exactly as the master would.
#include <sys/socket.h>

#include <cstddef>
#include <string_view>

namespace forkd {

// Room for any text below: "unix:" and the longest sun_path, and the credentials.
constexpr std::size_t peer_text_size = 192;

// "127.0.0.1:5555", "[::1]:5555" (a v4-mapped address as v4), "unix:/path", "unix:@abstract",
// "unix" for an unnamed UNIX socket, "unknown" otherwise. Writes at most size - 1 bytes and a NUL
// (an abstract name may hold NULs: the length returned counts them).
std::size_t format_sockaddr_to(char* out, std::size_t size, const sockaddr* sa, socklen_t len);

// A client: its address, or on a UNIX listener (family AF_UNIX or 0) the listener's address
// and, when known, the client's credentials ("unix:/run/x.sock uid=0 pid=7").
std::size_t format_peer_to(char* out, std::size_t size, const sockaddr* peer, socklen_t len,
                           std::string_view unix_listener, const ucred* cred);

} // namespace forkd
