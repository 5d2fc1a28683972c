// SPDX-License-Identifier: MIT
// The PROXY protocol v1/v2 header parser: every field, each family, LOCAL and UNKNOWN, TLVs,
// truncation at every length, oversized headers and garbage.
#include "daemon/admission/proxy_header.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace forkd {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

ProxyHeader parse(const Bytes& b) { return parse_proxy_header(b); }

std::string host(const sockaddr_storage& a) {
    char text[INET6_ADDRSTRLEN] = {};
    if (a.ss_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, text, sizeof text);
    else
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, text, sizeof text);
    return text;
}

unsigned port(const sockaddr_storage& a) {
    return ntohs(a.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(a).sin_port
                                        : reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
}

const Bytes v2_sig = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// A v2 header: version/command byte, family/protocol byte, then the block (length filled in).
Bytes v2(std::uint8_t ver_cmd, std::uint8_t fam, const Bytes& block) {
    Bytes b = v2_sig;
    b.push_back(ver_cmd);
    b.push_back(fam);
    b.push_back(std::uint8_t(block.size() >> 8));
    b.push_back(std::uint8_t(block.size() & 0xFF));
    b.insert(b.end(), block.begin(), block.end());
    return b;
}

Bytes inet_block(Bytes tlvs = {}) {
    Bytes b = {192, 0, 2, 7, 198, 51, 100, 9, 0x30, 0x39, 0x00, 0x50};  // :12345 -> :80
    b.insert(b.end(), tlvs.begin(), tlvs.end());
    return b;
}

Bytes inet6_block() {
    Bytes b(36, 0);
    b[0] = 0x20; b[1] = 0x01; b[2] = 0x0d; b[3] = 0xb8; b[15] = 1;     // 2001:db8::1
    b[16] = 0x20; b[17] = 0x01; b[18] = 0x0d; b[19] = 0xb8; b[31] = 2; // 2001:db8::2
    b[32] = 0xFF; b[33] = 0xFF; b[34] = 0x01; b[35] = 0xBB;            // :65535 -> :443
    return b;
}

// Every proper prefix of a good header asks for more; the whole says done with its length.
void expect_needs_more_until_whole(const Bytes& header) {
    for (std::size_t n = 0; n < header.size(); ++n) {
        const Bytes prefix(header.begin(), header.begin() + long(n));
        EXPECT_EQ(parse(prefix).status, ProxyParse::need_more) << "prefix of " << n << " bytes";
    }
    const ProxyHeader whole = parse(header);
    EXPECT_EQ(whole.status, ProxyParse::done);
    EXPECT_EQ(whole.consumed, header.size());
}

// ---- version 1 ---------------------------------------------------------------------------------

TEST(ProxyHeaderV1, Tcp4GivesBothAddressesAndPorts) {
    const ProxyHeader h = parse(bytes("PROXY TCP4 192.0.2.7 198.51.100.9 12345 80\r\n"));
    ASSERT_EQ(h.status, ProxyParse::done) << h.reason;
    EXPECT_EQ(h.version, 1);
    EXPECT_EQ(h.command, ProxyCommand::proxy);
    EXPECT_EQ(h.consumed, 44u);
    EXPECT_EQ(h.source.ss_family, AF_INET);
    EXPECT_EQ(h.address_length, sizeof(sockaddr_in));
    EXPECT_EQ(host(h.source), "192.0.2.7");
    EXPECT_EQ(port(h.source), 12345u);
    EXPECT_EQ(host(h.destination), "198.51.100.9");
    EXPECT_EQ(port(h.destination), 80u);
}

TEST(ProxyHeaderV1, Tcp6GivesBothAddressesAndPorts) {
    const ProxyHeader h = parse(bytes("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n"));
    ASSERT_EQ(h.status, ProxyParse::done) << h.reason;
    EXPECT_EQ(h.source.ss_family, AF_INET6);
    EXPECT_EQ(h.address_length, sizeof(sockaddr_in6));
    EXPECT_EQ(host(h.source), "2001:db8::1");
    EXPECT_EQ(port(h.source), 65535u);
    EXPECT_EQ(host(h.destination), "2001:db8::2");
    EXPECT_EQ(port(h.destination), 0u);
}

TEST(ProxyHeaderV1, UnknownKeepsThePeerAndIgnoresTheRestOfTheLine) {
    for (const char* line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
        const ProxyHeader h = parse(bytes(line));
        ASSERT_EQ(h.status, ProxyParse::done) << line;
        EXPECT_EQ(h.command, ProxyCommand::local);
        EXPECT_EQ(h.consumed, std::strlen(line));
    }
}

TEST(ProxyHeaderV1, DataAfterTheHeaderIsNotConsumed) {
    const ProxyHeader h = parse(bytes("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\nGET / HTTP/1.0\r\n\r\n"));
    ASSERT_EQ(h.status, ProxyParse::done);
    EXPECT_EQ(h.consumed, 34u);
}

TEST(ProxyHeaderV1, EveryTruncationAsksForMore) {
    expect_needs_more_until_whole(bytes("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"));
    expect_needs_more_until_whole(bytes("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
}

TEST(ProxyHeaderV1, TheLongestLegalLineFitsAndOneByteMoreDoesNot) {
    // The specification's worst case: UNKNOWN with two full IPv6 addresses and ports.
    const std::string longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ASSERT_EQ(longest.size(), proxy_v1_max_size);
    EXPECT_EQ(parse(bytes(longest)).status, ProxyParse::done);
    EXPECT_EQ(parse(bytes(longest)).consumed, proxy_v1_max_size);
    const ProxyHeader over = parse(bytes("PROXY UNKNOWN " + std::string(100, 'x') + "\r\n"));
    EXPECT_EQ(over.status, ProxyParse::malformed);
    EXPECT_STREQ(over.reason, "v1 header longer than 107 bytes");
    EXPECT_EQ(parse(bytes("PROXY UNKNOWN " + std::string(200, 'x'))).status, ProxyParse::malformed)
        << "no CRLF within 107 bytes is malformed, not a wait";
}

TEST(ProxyHeaderV1, BadFieldsAreMalformedWithAReason) {
    for (const char* line : {
             "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",       // protocol
             "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",         // a field missing
             "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",     // a field too many
             "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",      // trailing space
             "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",      // two spaces
             "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",     // address
             "PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n",   // family mismatch
             "PROXY TCP6 1.2.3.4 2001:db8::2 1 2\r\n",   // family mismatch
             "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",   // port range
             "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",      // leading zero
             "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",      // sign
             "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",         // LF without CR
             "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",        // CR without LF
             "PROXY \r\n",                               // nothing
         }) {
        const ProxyHeader h = parse(bytes(line));
        EXPECT_EQ(h.status, ProxyParse::malformed) << line;
        EXPECT_NE(std::strlen(h.reason), 0u) << line;
    }
}

// ---- version 2 ---------------------------------------------------------------------------------

TEST(ProxyHeaderV2, Tcp4GivesBothAddressesAndPorts) {
    const ProxyHeader h = parse(v2(0x21, 0x11, inet_block()));
    ASSERT_EQ(h.status, ProxyParse::done) << h.reason;
    EXPECT_EQ(h.version, 2);
    EXPECT_EQ(h.command, ProxyCommand::proxy);
    EXPECT_EQ(h.consumed, 28u);
    EXPECT_EQ(host(h.source), "192.0.2.7");
    EXPECT_EQ(port(h.source), 12345u);
    EXPECT_EQ(host(h.destination), "198.51.100.9");
    EXPECT_EQ(port(h.destination), 80u);
    EXPECT_EQ(h.address_length, sizeof(sockaddr_in));
}

TEST(ProxyHeaderV2, Tcp6GivesBothAddressesAndPorts) {
    const ProxyHeader h = parse(v2(0x21, 0x21, inet6_block()));
    ASSERT_EQ(h.status, ProxyParse::done) << h.reason;
    EXPECT_EQ(h.consumed, 52u);
    EXPECT_EQ(host(h.source), "2001:db8::1");
    EXPECT_EQ(port(h.source), 65535u);
    EXPECT_EQ(host(h.destination), "2001:db8::2");
    EXPECT_EQ(port(h.destination), 443u);
    EXPECT_EQ(h.address_length, sizeof(sockaddr_in6));
}

TEST(ProxyHeaderV2, LocalKeepsThePeerWhateverItsBlockHolds) {
    for (const Bytes& block : {Bytes{}, inet_block(), Bytes{1, 2, 3}}) {
        const ProxyHeader h = parse(v2(0x20, 0x00, block));
        ASSERT_EQ(h.status, ProxyParse::done) << h.reason;
        EXPECT_EQ(h.command, ProxyCommand::local);
        EXPECT_EQ(h.consumed, 16 + block.size());
    }
}

TEST(ProxyHeaderV2, UnspecUnixAndDatagramKeepThePeer) {
    for (std::uint8_t fam : {0x00, 0x31, 0x12, 0x22}) {
        const ProxyHeader h = parse(v2(0x21, fam, Bytes(216, 0)));
        ASSERT_EQ(h.status, ProxyParse::done) << int(fam) << ' ' << h.reason;
        EXPECT_EQ(h.command, ProxyCommand::local) << int(fam);
    }
}

TEST(ProxyHeaderV2, TlvsAreSkipped) {
    // PP2_TYPE_ALPN "h2", PP2_TYPE_AUTHORITY "example.org", an empty NOOP.
    Bytes tlvs = {0x01, 0x00, 0x02, 'h', '2', 0x02, 0x00, 0x0B};
    for (char c : std::string_view("example.org")) tlvs.push_back(std::uint8_t(c));
    tlvs.insert(tlvs.end(), {0x04, 0x00, 0x00});
    const ProxyHeader h = parse(v2(0x21, 0x11, inet_block(tlvs)));
    ASSERT_EQ(h.status, ProxyParse::done) << h.reason;
    EXPECT_EQ(h.consumed, 16 + 12 + tlvs.size());
    EXPECT_EQ(host(h.source), "192.0.2.7");
}

TEST(ProxyHeaderV2, ATlvRunningPastTheHeaderIsMalformed) {
    EXPECT_EQ(parse(v2(0x21, 0x11, inet_block({0x01, 0x00, 0x05, 'a'}))).status, ProxyParse::malformed);
    EXPECT_EQ(parse(v2(0x21, 0x11, inet_block({0x01, 0x00}))).status, ProxyParse::malformed);
}

TEST(ProxyHeaderV2, EveryTruncationAsksForMore) {
    expect_needs_more_until_whole(v2(0x21, 0x11, inet_block()));
    expect_needs_more_until_whole(v2(0x21, 0x21, inet6_block()));
    expect_needs_more_until_whole(v2(0x20, 0x00, {}));
}

TEST(ProxyHeaderV2, DataAfterTheHeaderIsNotConsumed) {
    Bytes b = v2(0x21, 0x11, inet_block());
    b.insert(b.end(), {'h', 'e', 'l', 'l', 'o'});
    EXPECT_EQ(parse(b).consumed, 28u);
}

TEST(ProxyHeaderV2, OversizedIsMalformedBeforeItArrives) {
    Bytes b = v2_sig;
    b.insert(b.end(), {0x21, 0x11, 0xFF, 0xFF});  // 64 KiB announced, none sent
    const ProxyHeader h = parse(b);
    EXPECT_EQ(h.status, ProxyParse::malformed);
    EXPECT_STREQ(h.reason, "v2 header longer than 1024 bytes");
    EXPECT_STREQ(parse(v2(0x21, 0x11, Bytes(proxy_header_max_size - 15, 0))).reason,
                 "v2 header longer than 1024 bytes")
        << "one byte over the limit";
    Bytes largest = inet_block();
    const std::size_t pad = proxy_header_max_size - 16 - largest.size() - 3;
    largest.insert(largest.end(), {0x04, std::uint8_t(pad >> 8), std::uint8_t(pad & 0xFF)});
    largest.resize(largest.size() + pad, 0);
    EXPECT_EQ(parse(v2(0x21, 0x11, largest)).status, ProxyParse::done) << "exactly the limit";
}

TEST(ProxyHeaderV2, BadFixedFieldsAreMalformed) {
    EXPECT_STREQ(parse(v2(0x11, 0x11, inet_block())).reason, "v2 header version is not 2");
    EXPECT_STREQ(parse(v2(0x22, 0x11, inet_block())).reason, "v2 command is not LOCAL or PROXY");
    EXPECT_STREQ(parse(v2(0x21, 0x41, inet_block())).reason, "v2 address family or protocol unknown");
    EXPECT_STREQ(parse(v2(0x21, 0x13, inet_block())).reason, "v2 address family or protocol unknown");
    EXPECT_STREQ(parse(v2(0x21, 0x11, Bytes(11, 0))).reason, "v2 address block too short");
    EXPECT_STREQ(parse(v2(0x21, 0x21, Bytes(35, 0))).reason, "v2 address block too short");
}

// ---- detection ---------------------------------------------------------------------------------

TEST(ProxyHeader, GarbageIsMalformedFromItsFirstByte) {
    for (const char* text : {"GET / HTTP/1.1\r\n", "P", "PROXY", "\r\n\r\n"}) {
        const Bytes b = bytes(text);
        const bool prefix = could_be_proxy_header(b);
        EXPECT_EQ(parse(b).status == ProxyParse::need_more, prefix) << text;
    }
    EXPECT_EQ(parse(bytes("GET /")).status, ProxyParse::malformed);
    EXPECT_STREQ(parse(bytes("X")).reason, "not a PROXY protocol header");
    EXPECT_EQ(parse(bytes("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n")).status, ProxyParse::malformed)
        << "the signature is case-sensitive";
    Bytes almost = v2_sig;
    almost[11] = 0x0B;
    EXPECT_EQ(parse(almost).status, ProxyParse::malformed);
    EXPECT_EQ(parse({}).status, ProxyParse::need_more);
}

TEST(ProxyHeader, EveryReasonHasAnIndexTheSpawnerCanSend) {
    EXPECT_EQ(proxy_reason_index("v2 header version is not 2"), 14u);
    EXPECT_STREQ(proxy_reason_text(proxy_reason_index("peer not allowed by proxy-from")),
                 "peer not allowed by proxy-from");
    EXPECT_EQ(proxy_reason_index("something else"), 0u);
    EXPECT_STREQ(proxy_reason_text(9999), "malformed PROXY protocol header");
    // Whatever the parser says is in the table.
    std::mt19937 random(3);
    for (int round = 0; round < 5000; ++round) {
        Bytes b(random() % 60);
        for (auto& byte : b) byte = std::uint8_t(random());
        if (round % 2 && b.size() >= 6) std::memcpy(b.data(), "PROXY ", 6);
        const ProxyHeader h = parse(b);
        if (h.status == ProxyParse::malformed) EXPECT_NE(proxy_reason_index(h.reason), 0u) << h.reason;
    }
}

TEST(ProxyHeader, RandomInputNeverOverrunsOrLiesAboutItsLength) {
    std::mt19937 random(15);
    for (int round = 0; round < 20000; ++round) {
        Bytes b(random() % 80);
        for (auto& byte : b) byte = std::uint8_t(random());
        if (round % 3 == 0 && b.size() >= 12) std::copy(v2_sig.begin(), v2_sig.end(), b.begin());
        if (round % 3 == 1 && b.size() >= 6) std::memcpy(b.data(), "PROXY ", 6);
        const ProxyHeader h = parse(b);
        if (h.status == ProxyParse::done) {
            EXPECT_GT(h.consumed, 0u);
            EXPECT_LE(h.consumed, b.size());
        }
        if (h.status == ProxyParse::malformed) EXPECT_NE(std::strlen(h.reason), 0u);
    }
}

} // namespace
} // namespace forkd
