// SPDX-License-Identifier: MIT
#pragma once
// Client addresses and CIDR networks as admission sees them: an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) is the IPv4 address a.b.c.d everywhere, so IPv4 rules and limits apply to
// clients of a dual-stack listener. libc only: parsing is inet_pton, matching is bit masks.
#include "common/base/error.hpp"

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace forkd {

struct IpAddress {
    enum class Family : std::uint8_t { v4 = 4, v6 = 6 };
    Family family = Family::v4;
    std::array<std::uint8_t, 16> bytes{};  // network order; IPv4 in the first 4, the rest zero

    static IpAddress v4(std::uint32_t host_order);
    // IPv4 or IPv6 peers (IPv4-mapped ones as IPv4); nullopt for UNIX or a short address.
    static std::optional<IpAddress> of_sockaddr(const sockaddr* address, socklen_t length);
    // "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" (which is 192.0.2.1); nullopt otherwise.
    static std::optional<IpAddress> parse(std::string_view text);

    unsigned bits() const { return family == Family::v4 ? 32 : 128; }
    bool bit(unsigned i) const { return (bytes[i / 8] >> (7 - i % 8)) & 1; }
    // The address with every bit after the first `prefix` cleared (prefix capped at bits()).
    IpAddress masked(unsigned prefix) const;
    std::string to_string() const;
    bool operator==(const IpAddress&) const = default;
};

struct Cidr {
    IpAddress network;   // host bits zero
    std::uint8_t prefix = 0;

    bool contains(const IpAddress& address) const {
        return address.family == network.family && address.masked(prefix) == network;
    }
    std::string to_string() const;  // "10.0.0.0/8", "2001:db8::/32"
    bool operator==(const Cidr&) const = default;
};

// "ADDR/LEN" or a bare "ADDR" (a /32 or /128). An IPv6 network inside ::ffff:0:0/96 is the IPv4
// network it maps. Errors say what is wrong: not an address, a prefix length that is missing,
// not a number or out of range, host bits set after the prefix (naming the network meant).
Result<Cidr> parse_cidr(std::string_view text);

} // namespace forkd
