// SPDX-License-Identifier: MIT
// Listen addresses as admins write them; socket addresses as logs print them.
#include "common/address.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <cstddef>
#include <cstring>
#include <stdexcept>

#include "common/base/peer_text.hpp"
#include "common/base/unique_fd.hpp"

namespace forkd {
namespace {

std::string reason_of(std::string_view text) {
    try {
        parse_listen_address(text);
    } catch (const std::invalid_argument& error) {
        return error.what();
    }
    return "(accepted)";
}

TEST(ParseListenAddress, Ipv4) {
    auto address = parse_listen_address("127.0.0.1:7007");
    auto* tcp = std::get_if<TcpAddress>(&address);
    ASSERT_NE(tcp, nullptr);
    EXPECT_EQ(tcp->host, "127.0.0.1");
    EXPECT_EQ(tcp->port, 7007);
    EXPECT_FALSE(tcp->any);
}

TEST(ParseListenAddress, PortZeroIsAllowedForEphemeralPorts) {
    auto address = parse_listen_address("127.0.0.1:0");
    EXPECT_EQ(std::get<TcpAddress>(address).port, 0);
}

TEST(ParseListenAddress, Ipv6InBrackets) {
    auto address = parse_listen_address("[::1]:7");
    auto& tcp = std::get<TcpAddress>(address);
    EXPECT_EQ(tcp.host, "::1");
    EXPECT_EQ(tcp.port, 7);
    EXPECT_EQ(std::get<TcpAddress>(parse_listen_address("[2001:db8::5]:65535")).host, "2001:db8::5");
}

TEST(ParseListenAddress, AnyAddress) {
    auto address = parse_listen_address("*:8080");
    auto& tcp = std::get<TcpAddress>(address);
    EXPECT_TRUE(tcp.any);
    EXPECT_EQ(tcp.host, "");
    EXPECT_EQ(tcp.port, 8080);
}

TEST(ParseListenAddress, HostName) {
    auto address = parse_listen_address("localhost:80");
    auto& tcp = std::get<TcpAddress>(address);
    EXPECT_EQ(tcp.host, "localhost");
    EXPECT_EQ(tcp.port, 80);
}

TEST(ParseListenAddress, UnixPath) {
    auto address = parse_listen_address("unix:/run/forkd/echo.sock");
    ASSERT_TRUE(std::holds_alternative<UnixAddress>(address));
    EXPECT_EQ(std::get<UnixAddress>(address).path, "/run/forkd/echo.sock");
}

TEST(ParseListenAddress, UnixPathLengthCheckedAgainstSunPath) {
    const std::size_t max = sizeof(sockaddr_un{}.sun_path) - 1;  // room for the NUL
    std::string longest = "/" + std::string(max - 1, 'a');
    EXPECT_NO_THROW(parse_listen_address("unix:" + longest));
    EXPECT_NE(reason_of("unix:" + longest + "a").find("UNIX path too long"), std::string::npos);
}

TEST(ParseListenAddress, UnixPathMustBeAbsoluteAndPresent) {
    EXPECT_NE(reason_of("unix:relative.sock").find("absolute"), std::string::npos);
    EXPECT_NE(reason_of("unix:").find("missing"), std::string::npos);
}

TEST(ParseListenAddress, Systemd) {
    EXPECT_TRUE(std::holds_alternative<SystemdSockets>(parse_listen_address("systemd")));
}

TEST(ParseListenAddress, Errors) {
    EXPECT_EQ(reason_of("127.0.0.1"), "missing port");
    EXPECT_EQ(reason_of("127.0.0.1:"), "missing port");
    EXPECT_EQ(reason_of("127.0.0.1:65536"), "port out of range");
    EXPECT_EQ(reason_of("127.0.0.1:99999999999999999999"), "port out of range");
    EXPECT_EQ(reason_of("127.0.0.1:http"), "bad port 'http'");
    EXPECT_EQ(reason_of("127.0.0.1:-1"), "bad port '-1'");
    EXPECT_EQ(reason_of("[::1]"), "missing port");
    EXPECT_EQ(reason_of("[::1]7"), "missing port");
    EXPECT_EQ(reason_of("[::1:7"), "missing ']'");
    EXPECT_EQ(reason_of("[not-v6]:7"), "bad IPv6 address 'not-v6'");
    EXPECT_NE(reason_of("::1:7").find("brackets"), std::string::npos);
    EXPECT_NE(reason_of(":7").find("missing host"), std::string::npos);
    EXPECT_NE(reason_of("bad host:7").find("bad host"), std::string::npos);
    EXPECT_EQ(reason_of(""), "empty address");
}

TEST(ListenAddressToString, Canonical) {
    for (const char* text : {"127.0.0.1:7007", "[::1]:7", "*:7", "unix:/p", "systemd", "localhost:0",
                             "[2001:db8::1]:65535"})
        EXPECT_EQ(to_string(parse_listen_address(text)), text);
    EXPECT_EQ(to_string(TcpAddress{"::1", 9, false}), "[::1]:9");
    EXPECT_EQ(to_string(TcpAddress{"", 9, true}), "*:9");
}

sockaddr_in v4(const char* host, std::uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, host, &sa.sin_addr);
    return sa;
}

sockaddr_in6 v6(const char* host, std::uint16_t port) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    inet_pton(AF_INET6, host, &sa.sin6_addr);
    return sa;
}

const sockaddr* as_sa(const void* p) { return static_cast<const sockaddr*>(p); }

TEST(FormatSockaddr, Ipv4) {
    auto sa = v4("192.0.2.7", 5555);
    EXPECT_EQ(format_sockaddr(as_sa(&sa), sizeof sa), "192.0.2.7:5555");
    EXPECT_EQ(host_of(as_sa(&sa), sizeof sa), "192.0.2.7");
    EXPECT_EQ(port_of(as_sa(&sa), sizeof sa), 5555);
}

TEST(FormatSockaddr, Ipv6) {
    auto sa = v6("::1", 5555);
    EXPECT_EQ(format_sockaddr(as_sa(&sa), sizeof sa), "[::1]:5555");
    EXPECT_EQ(host_of(as_sa(&sa), sizeof sa), "::1");
    EXPECT_EQ(port_of(as_sa(&sa), sizeof sa), 5555);
}

TEST(FormatSockaddr, V4MappedIpv6ShownAsIpv4) {
    auto sa = v6("::ffff:10.1.2.3", 80);
    EXPECT_EQ(format_sockaddr(as_sa(&sa), sizeof sa), "10.1.2.3:80");
    EXPECT_EQ(host_of(as_sa(&sa), sizeof sa), "10.1.2.3");
    EXPECT_EQ(port_of(as_sa(&sa), sizeof sa), 80);
}

TEST(FormatSockaddr, Unix) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, "/tmp/x.sock");
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + std::strlen(sa.sun_path) + 1);
    EXPECT_EQ(format_sockaddr(as_sa(&sa), len), "unix:/tmp/x.sock");
    EXPECT_EQ(host_of(as_sa(&sa), len), "");
    EXPECT_EQ(port_of(as_sa(&sa), len), 0);
    // An unnamed peer (a client that never bound) has only the family.
    EXPECT_EQ(format_sockaddr(as_sa(&sa), sizeof(sa_family_t)), "unix");
}

TEST(FormatSockaddr, UnixAbstract) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, "\0abc", 4);
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 4);
    EXPECT_EQ(format_sockaddr(as_sa(&sa), len), "unix:@abc");
}

TEST(FormatSockaddr, NullOrTruncated) {
    EXPECT_EQ(format_sockaddr(nullptr, 0), "unknown");
    auto sa = v4("1.2.3.4", 1);
    EXPECT_EQ(format_sockaddr(as_sa(&sa), 4), "unknown");
    EXPECT_EQ(host_of(nullptr, 0), "");
    EXPECT_EQ(port_of(nullptr, 0), 0);
}

TEST(FormatSockaddr, RealBoundSocket) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(fd);
    auto sa = v4("127.0.0.1", 0);
    ASSERT_EQ(::bind(fd.get(), as_sa(&sa), sizeof sa), 0);
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ASSERT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len), 0);
    std::uint16_t port = port_of(as_sa(&bound), len);
    EXPECT_NE(port, 0);
    EXPECT_EQ(format_sockaddr(as_sa(&bound), len), "127.0.0.1:" + std::to_string(port));
}

// Clients as forkd-spawner names them in scoreboard slots, without allocating: the master's text.
std::string peer_text(const sockaddr* sa, socklen_t len, std::string_view listener = "",
                      const ucred* cred = nullptr) {
    char text[peer_text_size];
    return std::string(text, format_peer_to(text, sizeof text, sa, len, listener, cred));
}

TEST(PeerText, IpClientsAreTheirAddress) {
    auto in = v4("127.0.0.1", 5000);
    EXPECT_EQ(peer_text(as_sa(&in), sizeof in, "unused"), "127.0.0.1:5000");
    auto mapped = v6("::ffff:10.0.0.2", 80);
    EXPECT_EQ(peer_text(as_sa(&mapped), sizeof mapped), "10.0.0.2:80");
}

TEST(PeerText, UnixClientsAreTheListenerAndTheirCredentials) {
    sockaddr_storage none{};  // forkd-spawner's UNIX peers: family 0
    const ucred cred{42, 1000, 1000};
    EXPECT_EQ(peer_text(as_sa(&none), 0, "unix:/run/x.sock", &cred), "unix:/run/x.sock uid=1000 pid=42");
    EXPECT_EQ(peer_text(as_sa(&none), 0, "unix:/run/x.sock"), "unix:/run/x.sock");
}

TEST(PeerText, ASmallBufferIsTruncatedAndTerminated) {
    char text[8];
    sockaddr_storage none{};
    EXPECT_EQ(format_peer_to(text, sizeof text, as_sa(&none), 0, "unix:/a/long/path", nullptr), 7u);
    EXPECT_STREQ(text, "unix:/a");
}

} // namespace
} // namespace forkd
