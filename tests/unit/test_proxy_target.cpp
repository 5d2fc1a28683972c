// SPDX-License-Identifier: MIT
// proxy-to as written: HOST:PORT, [V6]:PORT, unix:PATH, with one-line reasons for the rest.
#include "common/base/proxy_target.hpp"
#include "daemon/proxy/proxy_address.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

namespace forkd {
namespace {

std::string reason(std::string_view text) {
    auto parsed = parse_proxy_target(text);
    return parsed ? "" : parsed.error().context;
}

TEST(ProxyTarget, HostAndPort) {
    auto target = parse_proxy_target("127.0.0.1:7007");
    ASSERT_TRUE(target);
    EXPECT_EQ(target->host, "127.0.0.1");
    EXPECT_EQ(target->port, 7007);
    EXPECT_FALSE(target->is_unix());
    EXPECT_EQ(proxy_target_text(*target), "127.0.0.1:7007");
    target = parse_proxy_target("backend.example:80");
    ASSERT_TRUE(target);
    EXPECT_EQ(target->host, "backend.example");
    EXPECT_EQ(proxy_target_text(*target), "backend.example:80");
}

TEST(ProxyTarget, BracketedIpv6) {
    auto target = parse_proxy_target("[::1]:65535");
    ASSERT_TRUE(target);
    EXPECT_EQ(target->host, "::1");
    EXPECT_EQ(target->port, 65535);
    EXPECT_EQ(proxy_target_text(*target), "[::1]:65535");
}

TEST(ProxyTarget, UnixPath) {
    auto target = parse_proxy_target("unix:/run/app.sock");
    ASSERT_TRUE(target);
    EXPECT_TRUE(target->is_unix());
    EXPECT_EQ(target->path, "/run/app.sock");
    EXPECT_EQ(proxy_target_text(*target), "unix:/run/app.sock");
}

TEST(ProxyTarget, BadTextHasAReason) {
    EXPECT_EQ(reason(""), "empty address (HOST:PORT, [V6]:PORT or unix:PATH)");
    EXPECT_EQ(reason("localhost"), "missing port");
    EXPECT_EQ(reason("localhost:"), "missing port");
    EXPECT_EQ(reason("localhost:http"), "bad port 'http'");
    EXPECT_EQ(reason("localhost:65536"), "port out of range");
    EXPECT_EQ(reason("localhost:0"), "port 0 is not a destination");
    EXPECT_EQ(reason(":80"), "missing host");
    EXPECT_EQ(reason("*:80"), "'*' is for listening; name the host to connect to");
    EXPECT_EQ(reason("::1:80"), "IPv6 address must be in brackets: [ADDRESS]:PORT");
    EXPECT_EQ(reason("[::1]80"), "missing port");
    EXPECT_EQ(reason("[::1:80"), "missing ']'");
    EXPECT_EQ(reason("[nope]:80"), "bad IPv6 address 'nope'");
    EXPECT_EQ(reason("bad host:80"), "bad host 'bad host'");
    EXPECT_EQ(reason("unix:"), "missing UNIX socket path");
    EXPECT_EQ(reason("unix:run/app.sock"), "UNIX socket path must be absolute");
    EXPECT_EQ(reason("unix:/" + std::string(200, 'x')), "UNIX path too long (at most 107 bytes)");
}

TEST(ProxyAddress, LiteralsAndUnixPathsNeedNoLookup) {
    auto v4 = resolve_proxy_target(*parse_proxy_target("127.0.0.1:9"));
    ASSERT_TRUE(v4) << v4.error().message();
    ASSERT_EQ(v4->address.ss_family, AF_INET);
    EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(&v4->address)->sin_port), 9);
    auto v6 = resolve_proxy_target(*parse_proxy_target("[::1]:10"));
    ASSERT_TRUE(v6) << v6.error().message();
    EXPECT_EQ(v6->address.ss_family, AF_INET6);
    auto path = resolve_proxy_target(*parse_proxy_target("unix:/run/x.sock"));
    ASSERT_TRUE(path);
    EXPECT_EQ(path->address.ss_family, AF_UNIX);
    EXPECT_STREQ(reinterpret_cast<const sockaddr_un*>(&path->address)->sun_path, "/run/x.sock");
}

TEST(ProxyAddress, AnUnknownNameSaysWhichAndWhy) {
    auto resolved = resolve_proxy_target(*parse_proxy_target("no-such-host.invalid:80"));
    ASSERT_FALSE(resolved);
    EXPECT_EQ(resolved.error().context.rfind("resolve no-such-host.invalid:80: ", 0), 0u)
        << resolved.error().context;
}

} // namespace
} // namespace forkd
