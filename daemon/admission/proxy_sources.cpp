// SPDX-License-Identifier: MIT
#include "daemon/admission/proxy_sources.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace forkd {
namespace {

bool prefix_matches(const std::uint8_t* a, const std::uint8_t* b, unsigned bits) {
    const unsigned whole = bits / 8, rest = bits % 8;
    if (std::memcmp(a, b, whole) != 0) return false;
    if (!rest) return true;
    const std::uint8_t mask = std::uint8_t(0xFF << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

} // namespace

std::optional<Cidr> parse_cidr(std::string_view text) {
    const std::size_t slash = text.find('/');
    const std::string_view address = text.substr(0, slash);
    char buffer[INET6_ADDRSTRLEN] = {};
    if (address.empty() || address.size() >= sizeof buffer) return std::nullopt;
    std::memcpy(buffer, address.data(), address.size());
    Cidr cidr;
    if (inet_pton(AF_INET, buffer, cidr.bytes) == 1) cidr.family = AF_INET;
    else if (inet_pton(AF_INET6, buffer, cidr.bytes) == 1) cidr.family = AF_INET6;
    else return std::nullopt;
    const unsigned max = cidr.family == AF_INET ? 32 : 128;
    cidr.prefix = std::uint8_t(max);
    if (slash == std::string_view::npos) return cidr;
    const std::string_view prefix = text.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 3) return std::nullopt;
    unsigned value = 0;
    for (char c : prefix) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + unsigned(c - '0');
    }
    if (value > max) return std::nullopt;
    cidr.prefix = std::uint8_t(value);
    return cidr;
}

bool ProxySources::add(const Cidr& cidr) {
    if (count_ == entries_.size()) return false;
    entries_[count_++] = cidr;
    return true;
}

bool ProxySources::allows(const sockaddr* peer, socklen_t length) const {
    if (count_ == 0) return true;
    std::uint8_t bytes[16];
    int family = 0;
    if (peer->sa_family == AF_INET && length >= socklen_t(sizeof(sockaddr_in))) {
        std::memcpy(bytes, &reinterpret_cast<const sockaddr_in*>(peer)->sin_addr, 4);
        family = AF_INET;
    } else if (peer->sa_family == AF_INET6 && length >= socklen_t(sizeof(sockaddr_in6))) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6)) {
            std::memcpy(bytes, in6.s6_addr + 12, 4);
            family = AF_INET;
        } else {
            std::memcpy(bytes, in6.s6_addr, 16);
            family = AF_INET6;
        }
    } else {
        return false;
    }
    for (const Cidr& cidr : *this)
        if (cidr.family == family && prefix_matches(bytes, cidr.bytes, cidr.prefix)) return true;
    return false;
}

} // namespace forkd
