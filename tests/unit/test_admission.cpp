// SPDX-License-Identifier: MIT
#include "daemon/admission/admission.hpp"

#include <gtest/gtest.h>

namespace forkd {
namespace {

RuntimeLimits limits(unsigned max_connections, unsigned max_per_source, OverloadPolicy overload) {
    RuntimeLimits result;
    result.max_connections = max_connections;
    result.max_per_source = max_per_source;
    result.overload = overload;
    return result;
}

TEST(Admission, RefusalNames) {
    EXPECT_EQ(refusal_name(Refusal::none), "none");
    EXPECT_EQ(refusal_name(Refusal::limit), "limit");
    EXPECT_EQ(refusal_name(Refusal::per_source), "per_source");
    EXPECT_EQ(refusal_name(Refusal::fork_failed), "fork_failed");
}

TEST(Admission, WaitStopsAcceptingAtTheLimit) {
    const Admission admission(limits(3, 0, OverloadPolicy::wait));
    EXPECT_TRUE(admission.should_accept(0));
    EXPECT_TRUE(admission.should_accept(2));
    EXPECT_FALSE(admission.should_accept(3));
    EXPECT_FALSE(admission.should_accept(4));  // over it, e.g. after the limit was lowered
}

TEST(Admission, WaitNeverRefusesAnAcceptedConnectionForTheLimit) {
    const Admission admission(limits(3, 0, OverloadPolicy::wait));
    EXPECT_EQ(admission.decide(2, "10.0.0.1"), Refusal::none);
    EXPECT_EQ(admission.decide(3, "10.0.0.1"), Refusal::none);
    EXPECT_EQ(admission.decide(9, "10.0.0.1"), Refusal::none);
}

TEST(Admission, RejectKeepsAcceptingAndRefusesAtOrOverTheLimit) {
    const Admission admission(limits(3, 0, OverloadPolicy::reject));
    for (std::uint32_t active : {0u, 2u, 3u, 100u}) EXPECT_TRUE(admission.should_accept(active)) << active;
    EXPECT_EQ(admission.decide(0, "10.0.0.1"), Refusal::none);
    EXPECT_EQ(admission.decide(2, "10.0.0.1"), Refusal::none);
    EXPECT_EQ(admission.decide(3, "10.0.0.1"), Refusal::limit);
    EXPECT_EQ(admission.decide(4, "10.0.0.1"), Refusal::limit);
}

TEST(Admission, ZeroMeansUnlimited) {
    for (OverloadPolicy overload : {OverloadPolicy::wait, OverloadPolicy::reject}) {
        Admission admission(limits(0, 0, overload));
        for (int i = 0; i < 1000; ++i) admission.started("10.0.0.1");
        EXPECT_TRUE(admission.should_accept(1'000'000));
        EXPECT_EQ(admission.decide(1'000'000, "10.0.0.1"), Refusal::none);
    }
}

TEST(Admission, PerSourceCountsEachAddressSeparately) {
    for (OverloadPolicy overload : {OverloadPolicy::wait, OverloadPolicy::reject}) {
        Admission admission(limits(0, 2, overload));
        EXPECT_EQ(admission.decide(0, "10.0.0.1"), Refusal::none);
        admission.started("10.0.0.1");
        EXPECT_EQ(admission.decide(1, "10.0.0.1"), Refusal::none);
        admission.started("10.0.0.1");
        EXPECT_EQ(admission.decide(2, "10.0.0.1"), Refusal::per_source);
        EXPECT_EQ(admission.decide(2, "10.0.0.2"), Refusal::none);
        EXPECT_EQ(admission.decide(2, "::1"), Refusal::none);
        admission.ended("10.0.0.1");
        EXPECT_EQ(admission.decide(1, "10.0.0.1"), Refusal::none);
        EXPECT_TRUE(admission.should_accept(2));  // per-source never stops the listeners
    }
}

TEST(Admission, GlobalLimitWinsOverPerSourceWithReject) {
    Admission admission(limits(2, 1, OverloadPolicy::reject));
    admission.started("10.0.0.1");
    admission.started("10.0.0.2");
    EXPECT_EQ(admission.decide(2, "10.0.0.1"), Refusal::limit);
    EXPECT_EQ(admission.decide(2, "10.0.0.3"), Refusal::limit);
    EXPECT_EQ(admission.decide(1, "10.0.0.1"), Refusal::per_source);
    EXPECT_EQ(admission.decide(1, "10.0.0.3"), Refusal::none);
}

TEST(Admission, PerSourceStillAppliesUnderWaitAtTheLimit) {
    Admission admission(limits(2, 1, OverloadPolicy::wait));
    admission.started("10.0.0.1");
    EXPECT_FALSE(admission.should_accept(2));
    EXPECT_EQ(admission.decide(2, "10.0.0.1"), Refusal::per_source);
    EXPECT_EQ(admission.decide(2, "10.0.0.2"), Refusal::none);
}

TEST(Admission, BookkeepingDropsSourcesAtZero) {
    Admission admission(limits(0, 0, OverloadPolicy::wait));
    EXPECT_EQ(admission.tracked_sources(), 0u);
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 100; ++i) admission.started("10.0.0." + std::to_string(i));
        admission.started("10.0.0.7");
        EXPECT_EQ(admission.tracked_sources(), 100u);
        EXPECT_EQ(admission.active_from("10.0.0.7"), 2u);
        EXPECT_EQ(admission.active_from("10.0.0.8"), 1u);
        for (int i = 0; i < 100; ++i) admission.ended("10.0.0." + std::to_string(i));
        EXPECT_EQ(admission.active_from("10.0.0.7"), 1u);
        EXPECT_EQ(admission.tracked_sources(), 1u);
        admission.ended("10.0.0.7");
        EXPECT_EQ(admission.tracked_sources(), 0u);
    }
}

TEST(Admission, EndingAnUnknownSourceDoesNotUnderflow) {
    Admission admission(limits(0, 1, OverloadPolicy::reject));
    admission.ended("10.0.0.1");
    EXPECT_EQ(admission.active_from("10.0.0.1"), 0u);
    EXPECT_EQ(admission.tracked_sources(), 0u);
    admission.started("10.0.0.1");
    admission.ended("10.0.0.1");
    admission.ended("10.0.0.1");
    EXPECT_EQ(admission.active_from("10.0.0.1"), 0u);
    EXPECT_EQ(admission.decide(0, "10.0.0.1"), Refusal::none);
}

TEST(Admission, SetLimitsAppliesToTheNextDecisionAndKeepsCounts) {
    Admission admission(limits(10, 0, OverloadPolicy::wait));
    admission.started("10.0.0.1");
    admission.started("10.0.0.1");
    EXPECT_EQ(admission.decide(5, "10.0.0.1"), Refusal::none);
    EXPECT_TRUE(admission.should_accept(5));

    admission.set_limits(limits(5, 2, OverloadPolicy::reject));
    EXPECT_EQ(admission.limits().max_connections, 5u);
    EXPECT_EQ(admission.limits().overload, OverloadPolicy::reject);
    EXPECT_TRUE(admission.should_accept(5));
    EXPECT_EQ(admission.decide(5, "10.0.0.2"), Refusal::limit);
    EXPECT_EQ(admission.decide(4, "10.0.0.1"), Refusal::per_source);

    admission.set_limits(limits(5, 0, OverloadPolicy::wait));
    EXPECT_FALSE(admission.should_accept(5));
    EXPECT_EQ(admission.decide(4, "10.0.0.1"), Refusal::none);
}

TEST(Admission, SourcesAreExactStrings) {
    Admission admission(limits(0, 1, OverloadPolicy::reject));
    admission.started("unix:uid=1000");
    EXPECT_EQ(admission.decide(0, "unix:uid=1000"), Refusal::per_source);
    EXPECT_EQ(admission.decide(0, "unix:uid=1001"), Refusal::none);
    EXPECT_EQ(admission.decide(0, ""), Refusal::none);
}

} // namespace
} // namespace forkd
