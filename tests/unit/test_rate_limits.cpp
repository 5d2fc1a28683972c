// SPDX-License-Identifier: MIT
// max-connection-rate and max-per-source-rate: the token bucket and the per-source table with
// an injected clock, and the admission gate that puts every rule and limit in order.
#include "daemon/admission/admission_gate.hpp"
#include "daemon/admission/policy_blob.hpp"
#include "daemon/admission/source_rates.hpp"
#include "daemon/admission/token_bucket.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace forkd {
namespace {

constexpr std::int64_t ms = 1000000, s = 1000 * ms;
constexpr std::int64_t t0 = 1000 * s;  // a monotonic clock does not start at 0

TEST(TokenBucket, ABurstOfNThenOnePerIntervalAndWaitSaysWhen) {
    TokenBucket bucket(Rate{5, 1});  // 5 per second: one each 200 ms
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(bucket.take(t0)) << i;
    EXPECT_FALSE(bucket.take(t0)) << "the burst is N";
    EXPECT_EQ(bucket.wait_ns(t0), 200 * ms);
    EXPECT_FALSE(bucket.take(t0 + 199 * ms));
    EXPECT_TRUE(bucket.take(t0 + 200 * ms));
    EXPECT_FALSE(bucket.take(t0 + 200 * ms));
    // Idle for long: full again, never more than N.
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(bucket.take(t0 + 60 * s)) << i;
    EXPECT_FALSE(bucket.take(t0 + 60 * s));
}

TEST(TokenBucket, NoLimitAndSlowRates) {
    TokenBucket none;
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(none.take(t0));
    EXPECT_EQ(none.wait_ns(t0), 0);
    TokenBucket ssh(Rate{10, 60});  // 10 a minute: one each 6 s
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(ssh.take(t0 + i * ms));
    EXPECT_FALSE(ssh.take(t0 + 10 * ms));
    EXPECT_FALSE(ssh.take(t0 + 5 * s));
    EXPECT_TRUE(ssh.take(t0 + 6 * s));
    // Over a long run the rate holds: 10 + 60 tokens in the first 6 minutes.
    TokenBucket steady(Rate{10, 60});
    int taken = 0;
    for (std::int64_t t = t0; t < t0 + 360 * s; t += 100 * ms) taken += steady.take(t) ? 1 : 0;
    EXPECT_EQ(taken, 10 + 59);
    ssh.set_rate(Rate{10, 60});
    EXPECT_TRUE(ssh.take(t0 + 6 * s)) << "a new rate starts full";
}

SourceKey source(const char* address, SourcePrefix prefix = {}) {
    return SourceKey::of_ip(*IpAddress::parse(address), prefix);
}

TEST(SourceKey, SourcePrefixGroupsAddresses) {
    const SourcePrefix p{24, 64};
    EXPECT_EQ(source("10.1.2.3", p), source("10.1.2.200", p));
    EXPECT_NE(source("10.1.2.3", p), source("10.1.3.3", p));
    EXPECT_NE(source("10.1.2.3"), source("10.1.2.4")) << "default 32/128: one address each";
    EXPECT_EQ(source("2001:db8:1:2::1", p), source("2001:db8:1:2:ffff::9", p));
    EXPECT_NE(source("2001:db8:1:2::1", p), source("2001:db8:1:3::1", p));
    EXPECT_EQ(source("::ffff:10.1.2.3", p), source("10.1.2.9", p)) << "mapped is IPv4";
}

TEST(SourceRates, EachSourceHasItsOwnBucket) {
    std::vector<SourceRates::Entry> storage(SourceRates::entries_for(64));
    SourceRates rates(storage);
    rates.set_rate(Rate{2, 1});
    const SourceKey a = source("192.0.2.1"), b = source("192.0.2.2");
    EXPECT_TRUE(rates.take(a, t0));
    EXPECT_TRUE(rates.available(a, t0));
    EXPECT_TRUE(rates.take(a, t0));
    EXPECT_FALSE(rates.available(a, t0));
    EXPECT_FALSE(rates.take(a, t0));
    EXPECT_TRUE(rates.take(b, t0)) << "another source is not affected";
    EXPECT_TRUE(rates.take(a, t0 + 500 * ms));
    EXPECT_TRUE(rates.take(SourceKey{}, t0)) << "no source: no limit";
}

TEST(SourceRates, MoreSourcesThanEntriesNeverRefuseWronglyAndHotSourcesStayLimited) {
    std::vector<SourceRates::Entry> storage(SourceRates::entries_for(16));
    SourceRates rates(storage);
    rates.set_rate(Rate{1, 10});
    const SourceKey hot = source("198.51.100.1");
    ASSERT_TRUE(rates.take(hot, t0));
    // A thousand other sources once each: never refused (first connection of each).
    for (std::uint32_t i = 0; i < 1000; ++i)
        EXPECT_TRUE(rates.take(SourceKey::of_ip(IpAddress::v4(0x0a000000 + i)), t0 + 1 * ms)) << i;
    // The hot one may have been forgotten (then it gets a fresh bucket), but is refused again
    // once it is back in the table.
    (void)rates.take(hot, t0 + 2 * ms);
    EXPECT_FALSE(rates.take(hot, t0 + 3 * ms));
}

struct Gate {
    std::vector<SourceRates::Entry> storage = std::vector<SourceRates::Entry>(SourceRates::entries_for(256));
    AdmissionGate gate{storage};
    AccessRules rules;

    explicit Gate(RuntimeLimits limits, std::vector<AccessRule> list = {}) : rules(std::move(list)) {
        gate.set_limits(limits);
        gate.set_rules(rules.table());
    }
    AdmissionDecision from(const char* address, std::int64_t now, std::uint32_t active = 0,
                           std::uint32_t from_source = 0) {
        const IpAddress ip = *IpAddress::parse(address);
        return gate.decide({&ip, gate.source_of(ip), active, from_source}, now);
    }
};

RuntimeLimits limits_with(auto&& change) {
    RuntimeLimits l;
    l.max_connections = 0;
    change(l);
    return l;
}

TEST(AdmissionGate, DenyRulesComeFirstAndNameTheRule) {
    Gate g(limits_with([](RuntimeLimits&) {}),
           {{RuleAction::deny, *parse_cidr("127.0.0.3")}, {RuleAction::allow, *parse_cidr("127.0.0.0/8")}});
    EXPECT_TRUE(g.from("127.0.0.2", t0).admitted());
    const auto denied = g.from("127.0.0.3", t0);
    EXPECT_EQ(denied.refusal, Refusal::denied);
    EXPECT_EQ(denied.rule, 0u);
    EXPECT_EQ(g.from("10.0.0.1", t0).refusal, Refusal::denied);
    EXPECT_EQ(g.from("10.0.0.1", t0).rule, AccessTable::no_rule);
    // A UNIX peer: the rules do not apply.
    EXPECT_TRUE(g.gate.decide({nullptr, SourceKey::of_uid(1000), 0, 0}, t0).admitted());
    EXPECT_FALSE(busy_message_applies(Refusal::denied));
    EXPECT_TRUE(busy_message_applies(Refusal::rate));
}

TEST(AdmissionGate, GlobalRateRejectsOrHoldsAcceptsAndRefusedClientsSpendNothing) {
    Gate reject(limits_with([](RuntimeLimits& l) {
        l.max_connection_rate = {3, 1};
        l.overload = OverloadPolicy::reject;
    }));
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(reject.from("192.0.2.1", t0).admitted());
    EXPECT_EQ(reject.from("192.0.2.2", t0).refusal, Refusal::rate);
    EXPECT_TRUE(reject.gate.may_accept(0, t0)) << "reject keeps accepting (and refusing)";
    EXPECT_EQ(reject.gate.rate_wait_ns(t0), 0);
    EXPECT_TRUE(reject.from("192.0.2.2", t0 + 334 * ms).admitted());

    Gate wait(limits_with([](RuntimeLimits& l) { l.max_connection_rate = {2, 1}; }));
    EXPECT_TRUE(wait.gate.may_accept(0, t0));
    EXPECT_TRUE(wait.from("192.0.2.1", t0).admitted());
    EXPECT_TRUE(wait.from("192.0.2.1", t0).admitted());
    EXPECT_FALSE(wait.gate.may_accept(0, t0)) << "wait holds accepts";
    EXPECT_EQ(wait.gate.rate_wait_ns(t0), 500 * ms);
    EXPECT_TRUE(wait.from("192.0.2.1", t0).admitted()) << "wait never refuses for the rate";
    EXPECT_TRUE(wait.gate.may_accept(0, t0 + 1500 * ms));
}

TEST(AdmissionGate, PerSourceRateAndLimitsByPrefix) {
    Gate g(limits_with([](RuntimeLimits& l) {
        l.max_per_source_rate = {2, 60};
        l.source_prefix = {24, 64};
    }));
    EXPECT_TRUE(g.from("127.0.0.2", t0).admitted());
    EXPECT_TRUE(g.from("127.0.0.3", t0).admitted()) << "the same /24";
    EXPECT_EQ(g.from("127.0.0.4", t0).refusal, Refusal::per_source_rate);
    EXPECT_TRUE(g.from("127.0.1.2", t0).admitted()) << "another /24";
    EXPECT_EQ(g.from("::ffff:127.0.0.9", t0).refusal, Refusal::per_source_rate);

    Gate both(limits_with([](RuntimeLimits& l) {
        l.max_connections = 1;
        l.overload = OverloadPolicy::reject;
        l.max_per_source = 1;
        l.max_per_source_rate = {1, 60};
    }));
    EXPECT_EQ(both.from("192.0.2.1", t0, 1, 0).refusal, Refusal::limit);
    EXPECT_EQ(both.from("192.0.2.1", t0, 0, 1).refusal, Refusal::per_source);
    EXPECT_TRUE(both.from("192.0.2.1", t0).admitted()) << "the refusals above took no token";
    EXPECT_EQ(both.from("192.0.2.1", t0).refusal, Refusal::per_source_rate);
}

TEST(AdmissionGate, ANewRateStartsFullAndAnUnchangedOneKeepsItsState) {
    RuntimeLimits l = limits_with([](RuntimeLimits& l) {
        l.max_connection_rate = {1, 10};
        l.overload = OverloadPolicy::reject;
    });
    Gate g(l);
    EXPECT_TRUE(g.from("192.0.2.1", t0).admitted());
    EXPECT_EQ(g.from("192.0.2.1", t0).refusal, Refusal::rate);
    l.max_per_source = 5;  // something else changes (forkctl set)
    g.gate.set_limits(l);
    EXPECT_EQ(g.from("192.0.2.1", t0).refusal, Refusal::rate);
    l.max_connection_rate = {2, 10};
    g.gate.set_limits(l);
    EXPECT_TRUE(g.from("192.0.2.1", t0).admitted());
}

TEST(PolicyBlob, RoundTripsAndRefusesDamage) {
    const AccessRules rules({{RuleAction::deny, *parse_cidr("10.1.0.0/16")},
                             {RuleAction::allow, *parse_cidr("10.0.0.0/8")},
                             {RuleAction::deny, *parse_cidr("2001:db8::/32")}});
    const std::vector<std::byte> bytes = encode_policy(rules.table(), "busy\r\n");
    // A mapping is page-aligned; a vector's buffer is 16-aligned on glibc.
    alignas(16) static std::byte aligned[4096];
    ASSERT_LE(bytes.size(), sizeof aligned);
    std::memcpy(aligned, bytes.data(), bytes.size());
    const auto view = decode_policy({aligned, bytes.size()});
    ASSERT_TRUE(view);
    EXPECT_EQ(view->busy_message, "busy\r\n");
    for (const char* a : {"10.1.2.3", "10.2.0.1", "192.0.2.1", "2001:db8::1", "::1"}) {
        const IpAddress ip = *IpAddress::parse(a);
        EXPECT_EQ(view->rules.check(ip).allowed, rules.check(ip).allowed) << a;
        EXPECT_EQ(view->rules.check(ip).rule, rules.check(ip).rule) << a;
    }
    EXPECT_FALSE(decode_policy({aligned, bytes.size() - 1})) << "short";
    EXPECT_FALSE(decode_policy({aligned, 8}));
    aligned[0] = std::byte{0};
    EXPECT_FALSE(decode_policy({aligned, bytes.size()})) << "magic";
    const auto empty = encode_policy(AccessRules().table(), "");
    std::memcpy(aligned, empty.data(), empty.size());
    const auto none = decode_policy({aligned, empty.size()});
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->rules.check(*IpAddress::parse("192.0.2.1")).allowed);
}

} // namespace
} // namespace forkd
