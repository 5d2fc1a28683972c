// SPDX-License-Identifier: MIT
#include "daemon/admission/cidr.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace forkd {
namespace {

bool is_v4_mapped(const std::uint8_t* b) {
    static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(b, prefix, sizeof prefix) == 0;
}

IpAddress from_v6(const std::uint8_t* b) {
    IpAddress a;
    if (is_v4_mapped(b)) {
        std::memcpy(a.bytes.data(), b + 12, 4);
    } else {
        a.family = IpAddress::Family::v6;
        std::memcpy(a.bytes.data(), b, 16);
    }
    return a;
}

// A prefix length: 1 to 3 decimal digits, nothing else.
std::optional<unsigned> prefix_number(std::string_view text) {
    if (text.empty() || text.size() > 3) return std::nullopt;
    unsigned n = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + unsigned(c - '0');
    }
    return n;
}

} // namespace

IpAddress IpAddress::v4(std::uint32_t host_order) {
    IpAddress a;
    const std::uint32_t n = htonl(host_order);
    std::memcpy(a.bytes.data(), &n, 4);
    return a;
}

std::optional<IpAddress> IpAddress::of_sockaddr(const sockaddr* address, socklen_t length) {
    if (address == nullptr) return std::nullopt;
    if (address->sa_family == AF_INET && length >= socklen_t(sizeof(sockaddr_in))) {
        IpAddress a;
        std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, 4);
        return a;
    }
    if (address->sa_family == AF_INET6 && length >= socklen_t(sizeof(sockaddr_in6)))
        return from_v6(reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr.s6_addr);
    return std::nullopt;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    // inet_pton wants a C string; an address is at most INET6_ADDRSTRLEN-1 characters.
    char buffer[INET6_ADDRSTRLEN];
    if (text.empty() || text.size() >= sizeof buffer) return std::nullopt;
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    std::uint8_t raw[16];
    if (inet_pton(AF_INET, buffer, raw) == 1) {
        IpAddress a;
        std::memcpy(a.bytes.data(), raw, 4);
        return a;
    }
    if (inet_pton(AF_INET6, buffer, raw) == 1) return from_v6(raw);
    return std::nullopt;
}

IpAddress IpAddress::masked(unsigned prefix) const {
    IpAddress a = *this;
    for (unsigned byte = 0; byte < 16; ++byte) {
        const unsigned first_bit = byte * 8;
        if (prefix >= first_bit + 8) continue;
        const unsigned keep = prefix > first_bit ? prefix - first_bit : 0;
        a.bytes[byte] &= std::uint8_t(0xff00u >> keep);
    }
    return a;
}

std::string IpAddress::to_string() const {
    char buffer[INET6_ADDRSTRLEN];
    const int af = family == Family::v4 ? AF_INET : AF_INET6;
    if (inet_ntop(af, bytes.data(), buffer, sizeof buffer) == nullptr) return "?";
    return buffer;
}

std::string Cidr::to_string() const {
    return network.to_string() + "/" + std::to_string(prefix);
}

Result<Cidr> parse_cidr(std::string_view text) {
    const std::size_t slash = text.find('/');
    const std::string_view address_text = text.substr(0, slash);
    const auto address = IpAddress::parse(address_text);
    if (!address)
        return failure(quoted(text) + " is not a CIDR network: " + quoted(address_text) +
                       " is not an IPv4 or IPv6 address");
    // A network written as IPv4-mapped IPv6 counts its prefix over 128 bits.
    const bool written_mapped = address->family == IpAddress::Family::v4 &&
                                address_text.find(':') != std::string_view::npos;
    const unsigned written_bits = written_mapped ? 128 : address->bits();
    unsigned prefix = written_bits;
    if (slash != std::string_view::npos) {
        const std::string_view length_text = text.substr(slash + 1);
        const auto n = prefix_number(length_text);
        if (length_text.empty())
            return failure(quoted(text) + " is not a CIDR network: the prefix length after '/' is missing");
        if (!n)
            return failure(quoted(text) + " is not a CIDR network: prefix length " +
                           quoted(length_text) + " is not a number");
        if (*n > written_bits)
            return failure(quoted(text) + " is not a CIDR network: prefix length " +
                           std::to_string(*n) + " is out of range 0.." + std::to_string(written_bits));
        if (written_mapped && *n < 96)
            return failure(quoted(text) + " is not a CIDR network: an IPv4-mapped network needs "
                           "a prefix length of at least 96 (write the IPv4 network instead)");
        prefix = *n;
    }
    if (written_mapped) prefix -= 96;
    Cidr cidr{address->masked(prefix), std::uint8_t(prefix)};
    if (cidr.network != *address)
        return failure(quoted(text) + " is not a CIDR network: host bits are set after /" +
                       std::to_string(prefix) + " (the network is " + cidr.to_string() + ")");
    return cidr;
}

} // namespace forkd
