// SPDX-License-Identifier: MIT
// The agent-check answer (agent_reply) and proxy-from's CIDR matching (proxy_sources).
#include "daemon/admission/proxy_sources.hpp"
#include "daemon/master/agent_reply.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace forkd {
namespace {

TEST(AgentReply, WeightFallsWithTheLoadAndNeverReachesZeroWhileThereIsRoom) {
    EXPECT_EQ(agent_line({"running", 0, 0}), "up ready 100%");
    EXPECT_EQ(agent_line({"running", 5000, 0}), "up ready 100%") << "unlimited";
    EXPECT_EQ(agent_line({"running", 0, 4}), "up ready 100%");
    EXPECT_EQ(agent_line({"running", 1, 4}), "up ready 75%");
    EXPECT_EQ(agent_line({"running", 3, 4}), "up ready 25%");
    EXPECT_EQ(agent_line({"running", 999, 1000}), "up ready 1%") << "0.1% rounds up to 1 while there is room";
    EXPECT_EQ(agent_line({"running", 1000, 1000}), "up ready 0%") << "full";
    EXPECT_EQ(agent_line({"running", 1200, 1000}), "up ready 0%");
    EXPECT_EQ(agent_line({"draining", 1, 4}), "drain");
    EXPECT_EQ(agent_line({"stopping", 1, 4}), "down");
}

sockaddr_storage v4(const char* text) {
    sockaddr_storage ss{};
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    inet_pton(AF_INET, text, &in.sin_addr);
    return ss;
}

sockaddr_storage v6(const char* text) {
    sockaddr_storage ss{};
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, text, &in6.sin6_addr);
    return ss;
}

bool allows(const ProxySources& sources, const sockaddr_storage& ss) {
    const socklen_t len = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    return sources.allows(reinterpret_cast<const sockaddr*>(&ss), len);
}

TEST(ProxySources, EmptyAllowsEveryPeer) {
    ProxySources none;
    EXPECT_TRUE(allows(none, v4("192.0.2.1")));
    EXPECT_TRUE(allows(none, v6("2001:db8::1")));
}

TEST(ProxySources, PrefixesOfBothFamiliesAndMappedPeers) {
    ProxySources sources;
    for (const char* text : {"10.0.0.0/8", "192.0.2.7", "2001:db8:1::/48", "198.51.100.128/25"})
        ASSERT_TRUE(sources.add(*parse_cidr(text))) << text;
    EXPECT_TRUE(allows(sources, v4("10.255.0.1")));
    EXPECT_FALSE(allows(sources, v4("11.0.0.1")));
    EXPECT_TRUE(allows(sources, v4("192.0.2.7")));
    EXPECT_FALSE(allows(sources, v4("192.0.2.8")));
    EXPECT_TRUE(allows(sources, v4("198.51.100.200")));
    EXPECT_FALSE(allows(sources, v4("198.51.100.127")));
    EXPECT_TRUE(allows(sources, v6("2001:db8:1:ffff::1")));
    EXPECT_FALSE(allows(sources, v6("2001:db8:2::1")));
    EXPECT_TRUE(allows(sources, v6("::ffff:10.1.2.3"))) << "IPv4-mapped matches as IPv4";
    EXPECT_FALSE(allows(sources, v6("::ffff:11.1.2.3")));
}

TEST(ProxySources, ParseRefusesWhatIsNotACidr) {
    for (const char* text : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "host", "10.0.0/8", "/8"})
        EXPECT_FALSE(parse_cidr(text)) << text;
    EXPECT_EQ(parse_cidr("0.0.0.0/0")->prefix, 0);
    EXPECT_EQ(parse_cidr("::1")->prefix, 128);
    ProxySources full;
    for (std::size_t i = 0; i < ProxySources::max_entries; ++i) EXPECT_TRUE(full.add(*parse_cidr("10.0.0.1")));
    EXPECT_FALSE(full.add(*parse_cidr("10.0.0.1")));
}

} // namespace
} // namespace forkd
