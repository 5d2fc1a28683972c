// SPDX-License-Identifier: MIT
// The spawner's live connections per source (max-per-source), against std::map as the
// reference, and the keys it counts by.
#include "daemon/admission/source_counts.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <map>
#include <random>
#include <vector>

namespace forkd {
namespace {

SourceKey ipv4(const char* text) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(1234);
    inet_pton(AF_INET, text, &in.sin_addr);
    return SourceKey::of_address(reinterpret_cast<const sockaddr*>(&in), sizeof in);
}

SourceKey ipv6(const char* text, std::uint16_t port = 1234) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    inet_pton(AF_INET6, text, &in6.sin6_addr);
    return SourceKey::of_address(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
}

TEST(SourceKey, AnAddressIsItsSourceWhateverThePortAndFamilySpelling) {
    EXPECT_EQ(ipv4("192.0.2.1"), ipv4("192.0.2.1"));
    EXPECT_NE(ipv4("192.0.2.1"), ipv4("192.0.2.2"));
    EXPECT_EQ(ipv6("::ffff:192.0.2.1"), ipv4("192.0.2.1")) << "IPv4-mapped counts as IPv4";
    EXPECT_EQ(ipv6("2001:db8::1", 1), ipv6("2001:db8::1", 2)) << "the port is not the source";
    EXPECT_NE(ipv6("2001:db8::1"), ipv6("2001:db8::2"));
    EXPECT_NE(SourceKey::of_uid(1000), SourceKey::of_uid(1001));
    EXPECT_NE(SourceKey::of_uid(0x0100007f), ipv4("127.0.0.1")) << "a uid is not an address";
    EXPECT_FALSE(ipv4("0.0.0.0").empty()) << "even the zero address is a source";

    sockaddr_un unix_address{};
    unix_address.sun_family = AF_UNIX;
    EXPECT_TRUE(SourceKey::of_address(reinterpret_cast<const sockaddr*>(&unix_address),
                                      sizeof(sa_family_t)).empty());
    sockaddr_in truncated{};
    truncated.sin_family = AF_INET;
    EXPECT_TRUE(SourceKey::of_address(reinterpret_cast<const sockaddr*>(&truncated), 4).empty());
}

TEST(SourceCounts, CountsUpAndDownAndForgetsASourceAtZero) {
    std::vector<SourceCounts::Entry> storage(SourceCounts::entries_for(4));
    SourceCounts counts(storage);
    const SourceKey a = ipv4("10.0.0.1"), b = SourceKey::of_uid(1000);
    EXPECT_EQ(counts.count(a), 0u);
    EXPECT_TRUE(counts.add(a));
    EXPECT_TRUE(counts.add(a));
    EXPECT_TRUE(counts.add(b));
    EXPECT_EQ(counts.count(a), 2u);
    EXPECT_EQ(counts.count(b), 1u);
    EXPECT_EQ(counts.sources(), 2u);
    counts.remove(a);
    EXPECT_EQ(counts.count(a), 1u);
    counts.remove(a);
    EXPECT_EQ(counts.count(a), 0u);
    EXPECT_EQ(counts.sources(), 1u);
    counts.remove(a);  // not there: nothing happens
    EXPECT_EQ(counts.count(b), 1u);
    EXPECT_FALSE(counts.add(SourceKey{})) << "an empty key is no source";
    EXPECT_EQ(counts.count(SourceKey{}), 0u);
}

TEST(SourceCounts, AFullTableRefusesANewSourceButEveryProbeEnds) {
    std::vector<SourceCounts::Entry> storage(16);
    SourceCounts counts(storage);
    for (uid_t uid = 1; uid <= 15; ++uid) EXPECT_TRUE(counts.add(SourceKey::of_uid(uid)));
    EXPECT_FALSE(counts.add(SourceKey::of_uid(16)));
    EXPECT_TRUE(counts.add(SourceKey::of_uid(3))) << "a known source still counts up";
    EXPECT_EQ(counts.count(SourceKey::of_uid(99)), 0u) << "a miss in a full table ends";
    counts.remove(SourceKey::of_uid(7));
    EXPECT_TRUE(counts.add(SourceKey::of_uid(16)));
    std::vector<SourceCounts::Entry> odd(12);
    EXPECT_THROW(SourceCounts{odd}, std::invalid_argument);
}

// Random adds and removes over few sources in a small table, so that runs collide and wrap
// around its end and backward shifts are exercised.
TEST(SourceCounts, AgreesWithAMapOverManyRandomOperations) {
    std::vector<SourceCounts::Entry> storage(32);
    SourceCounts counts(storage);
    std::map<uid_t, std::uint32_t> reference;
    std::mt19937 random(7);
    for (int step = 0; step < 20000; ++step) {
        const uid_t uid = random() % 40;
        const SourceKey key = SourceKey::of_uid(uid);
        if (random() % 2 && reference.count(uid)) {
            counts.remove(key);
            if (--reference[uid] == 0) reference.erase(uid);
        } else if (reference.count(uid) || reference.size() < 24) {
            ASSERT_TRUE(counts.add(key)) << "step " << step;
            ++reference[uid];
        }
        ASSERT_EQ(counts.sources(), reference.size()) << "step " << step;
    }
    for (uid_t uid = 0; uid < 40; ++uid) {
        const auto it = reference.find(uid);
        EXPECT_EQ(counts.count(SourceKey::of_uid(uid)), it == reference.end() ? 0u : it->second) << uid;
    }
}

} // namespace
} // namespace forkd
