// SPDX-License-Identifier: MIT
#include "daemon/admission/proxy_header.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <iterator>
#include <cstring>
#include <string_view>

namespace forkd {
namespace {

constexpr std::uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                           0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view v1_signature = "PROXY ";

bool starts_like(std::span<const std::uint8_t> bytes, const std::uint8_t* signature, std::size_t size) {
    const std::size_t n = std::min(bytes.size(), size);
    return std::memcmp(bytes.data(), signature, n) == 0;
}

bool starts_like_v1(std::span<const std::uint8_t> bytes) {
    return starts_like(bytes, reinterpret_cast<const std::uint8_t*>(v1_signature.data()), v1_signature.size());
}

bool starts_like_v2(std::span<const std::uint8_t> bytes) {
    return starts_like(bytes, v2_signature, sizeof v2_signature);
}

ProxyHeader malformed(int version, const char* reason) {
    ProxyHeader header;
    header.status = ProxyParse::malformed;
    header.version = version;
    header.reason = reason;
    return header;
}

ProxyHeader need_more(int version) {
    ProxyHeader header;
    header.version = version;
    return header;
}

ProxyHeader done_local(int version, std::size_t consumed) {
    ProxyHeader header;
    header.status = ProxyParse::done;
    header.version = version;
    header.consumed = consumed;
    header.command = ProxyCommand::local;
    return header;
}

// ---- version 1: "PROXY TCP4 SRC DST SPORT DPORT\r\n" -------------------------------------------

// The next space-separated word of `line` from `pos` (exactly one space between words).
std::string_view next_word(std::string_view line, std::size_t& pos) {
    const std::size_t end = std::min(line.find(' ', pos), line.size());
    std::string_view word = line.substr(pos, end - pos);
    pos = end == line.size() ? end : end + 1;
    return word;
}

// 0..65535 in decimal, no sign, no leading zero (but "0" itself).
bool parse_port(std::string_view word, in_port_t& port) {
    if (word.empty() || word.size() > 5 || (word.size() > 1 && word[0] == '0')) return false;
    unsigned value = 0;
    for (char c : word) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + unsigned(c - '0');
    }
    if (value > 65535) return false;
    port = htons(in_port_t(value));
    return true;
}

// inet_pton needs a terminated string; a v1 address is at most 39 characters.
bool parse_address(std::string_view word, int family, sockaddr_storage& out, in_port_t port) {
    char text[INET6_ADDRSTRLEN] = {};
    if (word.empty() || word.size() >= sizeof text) return false;
    std::memcpy(text, word.data(), word.size());
    out = {};
    if (family == AF_INET) {
        auto& in4 = reinterpret_cast<sockaddr_in&>(out);
        in4.sin_family = AF_INET;
        in4.sin_port = port;
        return inet_pton(AF_INET, text, &in4.sin_addr) == 1;
    }
    auto& in6 = reinterpret_cast<sockaddr_in6&>(out);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = port;
    return inet_pton(AF_INET6, text, &in6.sin6_addr) == 1;
}

ProxyHeader parse_v1(std::span<const std::uint8_t> bytes) {
    const std::string_view all(reinterpret_cast<const char*>(bytes.data()),
                               std::min(bytes.size(), proxy_v1_max_size));
    const std::size_t cr = all.find('\r');
    const std::size_t lf = all.find('\n');
    if (lf != std::string_view::npos && (cr == std::string_view::npos || cr + 1 != lf))
        return malformed(1, "v1 header line does not end in CRLF");
    if (cr == std::string_view::npos || cr + 1 >= all.size()) {
        if (all.size() >= proxy_v1_max_size) return malformed(1, "v1 header longer than 107 bytes");
        return need_more(1);
    }
    if (all[cr + 1] != '\n') return malformed(1, "v1 header line does not end in CRLF");
    const std::string_view line = all.substr(v1_signature.size(), cr - v1_signature.size());
    const std::size_t consumed = cr + 2;
    std::size_t pos = 0;
    const std::string_view protocol = next_word(line, pos);
    // UNKNOWN: the rest of the line is to be ignored, whatever it holds.
    if (protocol == "UNKNOWN") return done_local(1, consumed);
    int family = 0;
    if (protocol == "TCP4") family = AF_INET;
    else if (protocol == "TCP6") family = AF_INET6;
    else return malformed(1, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
    const std::string_view source = next_word(line, pos);
    const std::string_view destination = next_word(line, pos);
    const std::string_view source_port = next_word(line, pos);
    const std::string_view destination_port = next_word(line, pos);
    if (pos != line.size() || destination_port.empty() || line.back() == ' ')
        return malformed(1, "v1 header does not have exactly 5 fields after PROXY");
    ProxyHeader header;
    in_port_t sport = 0, dport = 0;
    if (!parse_port(source_port, sport) || !parse_port(destination_port, dport))
        return malformed(1, "v1 port is not a number from 0 to 65535");
    if (!parse_address(source, family, header.source, sport) ||
        !parse_address(destination, family, header.destination, dport))
        return malformed(1, family == AF_INET ? "v1 address is not an IPv4 address"
                                              : "v1 address is not an IPv6 address");
    header.status = ProxyParse::done;
    header.version = 1;
    header.consumed = consumed;
    header.command = ProxyCommand::proxy;
    header.address_length = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    return header;
}

// ---- version 2: 12-byte signature, version/command, family/protocol, length, addresses, TLVs ---

constexpr std::uint8_t v2_local = 0x0, v2_proxy = 0x1;
constexpr std::uint8_t family_inet = 0x1, family_inet6 = 0x2;
constexpr std::uint8_t protocol_stream = 0x1;
constexpr std::size_t inet_block = 12, inet6_block = 36;

// TLVs (type, 16-bit length, value) after the addresses: skipped, but they must tile the rest.
bool tlvs_fit(std::span<const std::uint8_t> tlvs) {
    while (!tlvs.empty()) {
        if (tlvs.size() < 3) return false;
        const std::size_t length = (std::size_t(tlvs[1]) << 8) | tlvs[2];
        if (tlvs.size() < 3 + length) return false;
        tlvs = tlvs.subspan(3 + length);
    }
    return true;
}

void set_inet(sockaddr_storage& out, const std::uint8_t* address, const std::uint8_t* port) {
    out = {};
    auto& in4 = reinterpret_cast<sockaddr_in&>(out);
    in4.sin_family = AF_INET;
    std::memcpy(&in4.sin_addr, address, 4);
    std::memcpy(&in4.sin_port, port, 2);  // both in network order
}

void set_inet6(sockaddr_storage& out, const std::uint8_t* address, const std::uint8_t* port) {
    out = {};
    auto& in6 = reinterpret_cast<sockaddr_in6&>(out);
    in6.sin6_family = AF_INET6;
    std::memcpy(&in6.sin6_addr, address, 16);
    std::memcpy(&in6.sin6_port, port, 2);
}

ProxyHeader parse_v2(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < proxy_v2_fixed_size) return need_more(2);
    const std::uint8_t version = bytes[12] >> 4, command = bytes[12] & 0x0F;
    const std::uint8_t family = bytes[13] >> 4, protocol = bytes[13] & 0x0F;
    const std::size_t length = (std::size_t(bytes[14]) << 8) | bytes[15];
    if (version != 2) return malformed(2, "v2 header version is not 2");
    if (command != v2_local && command != v2_proxy) return malformed(2, "v2 command is not LOCAL or PROXY");
    if (family > 3 || protocol > 2) return malformed(2, "v2 address family or protocol unknown");
    const std::size_t total = proxy_v2_fixed_size + length;
    if (total > proxy_header_max_size) return malformed(2, "v2 header longer than 1024 bytes");
    if (bytes.size() < total) return need_more(2);
    const std::span<const std::uint8_t> block = bytes.subspan(proxy_v2_fixed_size, length);
    const bool inet = family == family_inet && protocol == protocol_stream;
    const bool inet6 = family == family_inet6 && protocol == protocol_stream;
    const std::size_t addresses = inet ? inet_block : inet6 ? inet6_block : 0;
    if (command == v2_proxy && length < addresses) return malformed(2, "v2 address block too short");
    // LOCAL's block holds nothing forkd reads; a PROXY of another family keeps the peer too.
    if (command == v2_local || addresses == 0) return done_local(2, total);
    if (!tlvs_fit(block.subspan(addresses))) return malformed(2, "v2 TLV runs past the header");
    ProxyHeader header;
    const std::uint8_t* a = block.data();
    if (inet) {
        set_inet(header.source, a, a + 8);
        set_inet(header.destination, a + 4, a + 10);
        header.address_length = sizeof(sockaddr_in);
    } else {
        set_inet6(header.source, a, a + 32);
        set_inet6(header.destination, a + 16, a + 34);
        header.address_length = sizeof(sockaddr_in6);
    }
    header.status = ProxyParse::done;
    header.version = 2;
    header.consumed = total;
    header.command = ProxyCommand::proxy;
    return header;
}

} // namespace

std::uint32_t proxy_reason_index(const char* reason) {
    for (std::uint32_t i = 0; i < std::size(proxy_refusal_reasons); ++i)
        if (std::strcmp(reason, proxy_refusal_reasons[i]) == 0) return i;
    return 0;
}

const char* proxy_reason_text(std::uint32_t index) {
    return index < std::size(proxy_refusal_reasons) ? proxy_refusal_reasons[index] : proxy_refusal_reasons[0];
}

bool could_be_proxy_header(std::span<const std::uint8_t> bytes) {
    return starts_like_v1(bytes) || starts_like_v2(bytes);
}

ProxyHeader parse_proxy_header(std::span<const std::uint8_t> bytes) {
    if (bytes.empty()) return need_more(0);
    const bool v1 = starts_like_v1(bytes), v2 = starts_like_v2(bytes);
    if (!v1 && !v2) return malformed(0, "not a PROXY protocol header");
    if (v1 && bytes.size() < v1_signature.size()) return need_more(1);
    if (v2 && bytes.size() < sizeof v2_signature) return need_more(2);
    return v1 ? parse_v1(bytes) : parse_v2(bytes);
}

} // namespace forkd
