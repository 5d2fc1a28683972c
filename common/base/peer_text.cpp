// SPDX-License-Identifier: MIT
#include "common/base/peer_text.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace forkd {
namespace {

// Appends bytes, keeping room for the NUL; returns the new length.
std::size_t append(char* out, std::size_t size, std::size_t at, std::string_view text) {
    if (size == 0 || at >= size - 1) return at;
    const std::size_t n = std::min(text.size(), size - 1 - at);
    std::memcpy(out + at, text.data(), n);
    out[at + n] = '\0';
    return at + n;
}

std::size_t format_inet(char* out, std::size_t size, const sockaddr* sa, socklen_t len) {
    char host[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    bool bracket = false;
    if (sa->sa_family == AF_INET && len >= socklen_t(sizeof(sockaddr_in))) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6 && len >= socklen_t(sizeof(sockaddr_in6))) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        const bool mapped = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr);
        if (mapped) inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof host);
        else inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        bracket = !mapped;
    }
    if (!host[0]) return append(out, size, 0, "unknown");
    char text[INET6_ADDRSTRLEN + 16];
    const int n = std::snprintf(text, sizeof text, bracket ? "[%s]:%u" : "%s:%u", host, port);
    return append(out, size, 0, std::string_view(text, std::size_t(std::max(n, 0))));
}

std::size_t format_unix(char* out, std::size_t size, const sockaddr* sa, socklen_t len) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    const auto offset = socklen_t(offsetof(sockaddr_un, sun_path));
    if (len <= offset) return append(out, size, 0, "unix");
    const std::size_t max = std::min<std::size_t>(len - offset, sizeof un->sun_path);
    if (un->sun_path[0] == '\0') {  // abstract namespace
        if (max <= 1) return append(out, size, 0, "unix");
        return append(out, size, append(out, size, 0, "unix:@"), std::string_view(un->sun_path + 1, max - 1));
    }
    const std::string_view path(un->sun_path, strnlen(un->sun_path, max));
    if (path.empty()) return append(out, size, 0, "unix");
    return append(out, size, append(out, size, 0, "unix:"), path);
}

} // namespace

std::size_t format_sockaddr_to(char* out, std::size_t size, const sockaddr* sa, socklen_t len) {
    if (size) out[0] = '\0';
    if (!sa || len < socklen_t(sizeof(sa_family_t))) return append(out, size, 0, "unknown");
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) return format_inet(out, size, sa, len);
    if (sa->sa_family == AF_UNIX) return format_unix(out, size, sa, len);
    return append(out, size, 0, "unknown");
}

std::size_t format_peer_to(char* out, std::size_t size, const sockaddr* peer, socklen_t len,
                           std::string_view unix_listener, const ucred* cred) {
    if (size) out[0] = '\0';
    const bool is_unix = peer->sa_family == AF_UNIX || peer->sa_family == AF_UNSPEC;
    if (!is_unix) return format_sockaddr_to(out, size, peer, len);
    std::size_t at = append(out, size, 0, unix_listener);
    if (!cred) return at;
    char ids[48];
    const int n = std::snprintf(ids, sizeof ids, " uid=%u pid=%d", unsigned(cred->uid), int(cred->pid));
    return append(out, size, at, std::string_view(ids, std::size_t(std::max(n, 0))));
}

} // namespace forkd
