// SPDX-License-Identifier: MIT
// CIDR parsing and the allow/deny matcher, against a linear scan as the reference.
#include "daemon/admission/access_rules.hpp"
#include "daemon/admission/cidr.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <random>
#include <vector>

namespace forkd {
namespace {

Cidr cidr(const char* text) {
    auto c = parse_cidr(text);
    EXPECT_TRUE(c.ok()) << text << ": " << (c.ok() ? "" : c.error().message());
    return c.ok() ? *c : Cidr{};
}

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

std::string parse_error(const char* text) {
    auto c = parse_cidr(text);
    return c.ok() ? std::string("(parsed)") : c.error().context;
}

TEST(Cidr, ParsesNetworksAndBareAddresses) {
    EXPECT_EQ(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
    EXPECT_EQ(cidr("192.0.2.7").to_string(), "192.0.2.7/32");
    EXPECT_EQ(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
    EXPECT_EQ(cidr("2001:db8::/32").to_string(), "2001:db8::/32");
    EXPECT_EQ(cidr("::1").to_string(), "::1/128");
    EXPECT_EQ(cidr("::/0").to_string(), "::/0");
    EXPECT_EQ(cidr("10.1.2.0/024").prefix, 24) << "leading zeros are digits";
}

TEST(Cidr, AnIpv4MappedNetworkIsTheIpv4Network) {
    EXPECT_EQ(cidr("::ffff:10.0.0.0/104"), cidr("10.0.0.0/8"));
    EXPECT_EQ(cidr("::ffff:192.0.2.1"), cidr("192.0.2.1/32"));
    EXPECT_EQ(cidr("::ffff:0.0.0.0/96"), cidr("0.0.0.0/0"));
    EXPECT_NE(parse_error("::ffff:0.0.0.0/95").find("at least 96"), std::string::npos);
}

TEST(Cidr, BadInputGetsAnErrorThatSaysWhatIsWrong) {
    EXPECT_NE(parse_error("10.0.0.0/33").find("prefix length 33 is out of range 0..32"),
              std::string::npos);
    EXPECT_NE(parse_error("2001:db8::/129").find("out of range 0..128"), std::string::npos);
    EXPECT_NE(parse_error("10.0.0.0/").find("missing"), std::string::npos);
    EXPECT_NE(parse_error("10.0.0.0/x8").find("not a number"), std::string::npos);
    EXPECT_NE(parse_error("10.0.0.0/-1").find("not a number"), std::string::npos);
    EXPECT_NE(parse_error("10.0.0.0/ 8").find("not a number"), std::string::npos);
    EXPECT_NE(parse_error("10.0.0.0/8/8").find("not a number"), std::string::npos);
    EXPECT_NE(parse_error("10.0.0.0/1000").find("not a number"), std::string::npos);
    EXPECT_NE(parse_error("10.0.0.256/8").find("not an IPv4 or IPv6 address"), std::string::npos);
    EXPECT_NE(parse_error("example.org").find("not an IPv4 or IPv6 address"), std::string::npos);
    EXPECT_NE(parse_error("").find("not an IPv4 or IPv6 address"), std::string::npos);
    EXPECT_NE(parse_error("/8").find("not an IPv4 or IPv6 address"), std::string::npos);
    EXPECT_NE(parse_error("10.1.2.3/8").find("host bits are set after /8 (the network is 10.0.0.0/8)"),
              std::string::npos);
    EXPECT_NE(parse_error("2001:db8::1/64").find("2001:db8::/64"), std::string::npos);
    EXPECT_NE(parse_error("10.0.0.0/33").find("'10.0.0.0/33'"), std::string::npos)
        << "the error quotes what was written";
}

TEST(Cidr, ContainsAndPeersFromSockaddrs) {
    EXPECT_TRUE(cidr("10.0.0.0/8").contains(ip("10.255.0.1")));
    EXPECT_FALSE(cidr("10.0.0.0/8").contains(ip("11.0.0.1")));
    EXPECT_TRUE(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
    EXPECT_FALSE(cidr("0.0.0.0/0").contains(ip("::1"))) << "families do not mix";
    EXPECT_FALSE(cidr("::/0").contains(ip("10.0.0.1")));
    EXPECT_TRUE(cidr("::/0").contains(ip("::1")));

    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr);
    const auto mapped = IpAddress::of_sockaddr(reinterpret_cast<sockaddr*>(&in6), sizeof in6);
    ASSERT_TRUE(mapped);
    EXPECT_EQ(*mapped, ip("10.1.2.3")) << "an IPv4-mapped peer is its IPv4 address";
    EXPECT_TRUE(cidr("10.0.0.0/8").contains(*mapped));

    sockaddr_in in{};
    in.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.1", &in.sin_addr);
    EXPECT_EQ(IpAddress::of_sockaddr(reinterpret_cast<sockaddr*>(&in), sizeof in)->to_string(),
              "192.0.2.1");
    EXPECT_FALSE(IpAddress::of_sockaddr(reinterpret_cast<sockaddr*>(&in), 4)) << "short";
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    EXPECT_FALSE(IpAddress::of_sockaddr(reinterpret_cast<sockaddr*>(&un), sizeof un));
    EXPECT_EQ(ip("10.1.2.3").masked(24), ip("10.1.2.0"));
    EXPECT_EQ(ip("2001:db8:1:2:3::1").masked(64), ip("2001:db8:1:2::"));
}

AccessRules rules(std::initializer_list<std::pair<RuleAction, const char*>> list) {
    std::vector<AccessRule> out;
    for (auto [action, text] : list) out.push_back({action, cidr(text)});
    return AccessRules(std::move(out));
}

constexpr RuleAction allow = RuleAction::allow, deny = RuleAction::deny;

TEST(AccessRules, TheFirstMatchingRuleInWrittenOrderDecides) {
    const AccessRules r = rules({{deny, "10.1.0.0/16"}, {allow, "10.0.0.0/8"}, {deny, "10.1.2.3"}});
    EXPECT_FALSE(r.check(ip("10.1.2.3")).allowed);
    EXPECT_EQ(r.check(ip("10.1.2.3")).rule, 0u) << "the /16 is written first";
    EXPECT_TRUE(r.check(ip("10.2.0.1")).allowed);
    EXPECT_EQ(r.check(ip("10.2.0.1")).rule, 1u);
    EXPECT_FALSE(r.check(ip("192.0.2.1")).allowed) << "an allow exists: no match is denied";
    EXPECT_EQ(r.check(ip("192.0.2.1")).rule, AccessRules::no_rule);
    EXPECT_FALSE(r.check(ip("::1")).allowed);

    const AccessRules only_deny = rules({{deny, "192.0.2.0/24"}, {deny, "2001:db8::/32"}});
    EXPECT_TRUE(only_deny.check(ip("198.51.100.1")).allowed) << "deny only: no match is allowed";
    EXPECT_FALSE(only_deny.check(ip("192.0.2.200")).allowed);
    EXPECT_FALSE(only_deny.check(ip("2001:db8:ffff::1")).allowed);
    EXPECT_TRUE(only_deny.check(ip("2001:db9::1")).allowed);
    EXPECT_TRUE(only_deny.check(ip("::ffff:198.51.100.1")).allowed);
    EXPECT_FALSE(only_deny.check(ip("::ffff:192.0.2.9")).allowed) << "mapped matches IPv4 rules";

    EXPECT_TRUE(AccessRules().check(ip("10.0.0.1")).allowed) << "no rules: everyone";
    const AccessRules inner_first = rules({{allow, "10.1.2.3"}, {deny, "0.0.0.0/0"}});
    EXPECT_TRUE(inner_first.check(ip("10.1.2.3")).allowed);
    EXPECT_FALSE(inner_first.check(ip("10.1.2.4")).allowed);
    EXPECT_FALSE(inner_first.check(ip("255.255.255.255")).allowed) << "the very last address";
    EXPECT_FALSE(inner_first.check(ip("0.0.0.0")).allowed);
    const AccessRules top = rules({{allow, "255.255.255.255"}, {allow, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
                                   {deny, "::/0"}});
    EXPECT_TRUE(top.check(ip("255.255.255.255")).allowed);
    EXPECT_TRUE(top.check(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")).allowed);
    EXPECT_FALSE(top.check(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")).allowed);
    EXPECT_EQ(r.rules()[2].to_string(), "deny 10.1.2.3/32");
}

// Random rule sets whose networks overlap often (few distinct high bits), checked against a
// linear scan over random addresses, most of them inside some rule's network.
IpAddress random_address(std::mt19937_64& rng, IpAddress::Family family) {
    IpAddress a;
    a.family = family;
    const unsigned bytes = family == IpAddress::Family::v4 ? 4 : 16;
    for (unsigned i = 0; i < bytes; ++i) a.bytes[i] = std::uint8_t(rng());
    // Crowd the addresses into a few networks so that rules nest and repeat.
    a.bytes[0] = std::uint8_t(rng() % 3);
    a.bytes[1] &= 0x07;
    return a;
}

TEST(AccessRules, MatchesALinearScanOverRandomRulesAndAddresses) {
    std::mt19937_64 rng(20261201);
    for (int round = 0; round < 300; ++round) {
        std::vector<AccessRule> list;
        const int n = int(rng() % 60);
        for (int i = 0; i < n; ++i) {
            const auto family = rng() % 3 == 0 ? IpAddress::Family::v6 : IpAddress::Family::v4;
            const IpAddress a = random_address(rng, family);
            // Short prefixes are rarer, so that not everything is covered by a /3.
            const unsigned prefix = std::min<unsigned>(a.bits(), unsigned(rng() % (a.bits() + 1)) | 8u);
            const unsigned p = rng() % 20 == 0 ? unsigned(rng() % 9) : prefix;
            list.push_back({rng() % 2 ? RuleAction::allow : RuleAction::deny,
                            Cidr{a.masked(p), std::uint8_t(p)}});
        }
        const AccessRules matcher(list);
        for (int probe = 0; probe < 400; ++probe) {
            IpAddress a;
            if (!list.empty() && probe % 2 == 0) {
                // Inside (or at the edge of) some rule's network.
                const Cidr& c = list[rng() % list.size()].network;
                a = random_address(rng, c.network.family);
                for (unsigned bit = 0; bit < c.prefix; ++bit) {
                    const std::uint8_t mask = std::uint8_t(0x80u >> (bit % 8));
                    a.bytes[bit / 8] = std::uint8_t((a.bytes[bit / 8] & ~mask) | (c.network.bytes[bit / 8] & mask));
                }
                if (probe % 8 == 0) a = a.masked(c.prefix);
            } else {
                a = random_address(rng, rng() % 3 == 0 ? IpAddress::Family::v6 : IpAddress::Family::v4);
            }
            std::size_t expected = AccessRules::no_rule;
            for (std::size_t i = 0; i < list.size(); ++i)
                if (list[i].network.contains(a)) {
                    expected = i;
                    break;
                }
            ASSERT_EQ(matcher.first_match(a), expected)
                << "round " << round << " address " << a.to_string();
        }
    }
}

TEST(AccessRules, TenThousandRulesStayAccurate) {
    std::mt19937_64 rng(7);
    std::vector<AccessRule> list;
    for (int i = 0; i < 10000; ++i) {
        const IpAddress a = IpAddress::v4(std::uint32_t(rng()));
        const unsigned p = 16 + unsigned(rng() % 17);
        list.push_back({RuleAction::deny, Cidr{a.masked(p), std::uint8_t(p)}});
    }
    const AccessRules matcher(list);
    for (int probe = 0; probe < 500; ++probe) {
        const IpAddress a = probe % 2 ? IpAddress::v4(std::uint32_t(rng()))
                                      : list[rng() % list.size()].network.network;
        std::size_t expected = AccessRules::no_rule;
        for (std::size_t i = 0; i < list.size(); ++i)
            if (list[i].network.contains(a)) {
                expected = i;
                break;
            }
        ASSERT_EQ(matcher.first_match(a), expected) << a.to_string();
    }
}

} // namespace
} // namespace forkd
