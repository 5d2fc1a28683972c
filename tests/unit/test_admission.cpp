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
    EXPECT_EQ(admission.decide(2, 0), Refusal::none);
    EXPECT_EQ(admission.decide(3, 0), Refusal::none);
    EXPECT_EQ(admission.decide(9, 0), Refusal::none);
}

TEST(Admission, RejectKeepsAcceptingAndRefusesAtOrOverTheLimit) {
    const Admission admission(limits(3, 0, OverloadPolicy::reject));
    for (std::uint32_t active : {0u, 2u, 3u, 100u}) EXPECT_TRUE(admission.should_accept(active)) << active;
    EXPECT_EQ(admission.decide(0, 0), Refusal::none);
    EXPECT_EQ(admission.decide(2, 0), Refusal::none);
    EXPECT_EQ(admission.decide(3, 0), Refusal::limit);
    EXPECT_EQ(admission.decide(4, 0), Refusal::limit);
}

TEST(Admission, ZeroMeansUnlimited) {
    for (OverloadPolicy overload : {OverloadPolicy::wait, OverloadPolicy::reject}) {
        Admission admission(limits(0, 0, overload));
        EXPECT_TRUE(admission.should_accept(1'000'000));
        EXPECT_EQ(admission.decide(1'000'000, 1000), Refusal::none);
    }
}

// The counts themselves are the scoreboard's (test_shared_sources.cpp, test_source_counts.cpp).
TEST(Admission, PerSourceRefusesAtTheSourcesLimit) {
    for (OverloadPolicy overload : {OverloadPolicy::wait, OverloadPolicy::reject}) {
        Admission admission(limits(0, 2, overload));
        EXPECT_EQ(admission.decide(0, 0), Refusal::none);
        EXPECT_EQ(admission.decide(1, 1), Refusal::none);
        EXPECT_EQ(admission.decide(2, 2), Refusal::per_source);
        EXPECT_EQ(admission.decide(2, 3), Refusal::per_source);
        EXPECT_TRUE(admission.should_accept(2));  // per-source never stops the listeners
    }
}

TEST(Admission, GlobalLimitWinsOverPerSourceWithReject) {
    Admission admission(limits(2, 1, OverloadPolicy::reject));
    EXPECT_EQ(admission.decide(2, 1), Refusal::limit);
    EXPECT_EQ(admission.decide(2, 0), Refusal::limit);
    EXPECT_EQ(admission.decide(1, 1), Refusal::per_source);
    EXPECT_EQ(admission.decide(1, 0), Refusal::none);
}

TEST(Admission, PerSourceStillAppliesUnderWaitAtTheLimit) {
    Admission admission(limits(2, 1, OverloadPolicy::wait));
    EXPECT_FALSE(admission.should_accept(2));
    EXPECT_EQ(admission.decide(2, 1), Refusal::per_source);
    EXPECT_EQ(admission.decide(2, 0), Refusal::none);
}

TEST(Admission, SetLimitsAppliesToTheNextDecision) {
    Admission admission(limits(10, 0, OverloadPolicy::wait));
    EXPECT_EQ(admission.decide(5, 2), Refusal::none);
    EXPECT_TRUE(admission.should_accept(5));

    admission.set_limits(limits(5, 2, OverloadPolicy::reject));
    EXPECT_EQ(admission.limits().max_connections, 5u);
    EXPECT_EQ(admission.limits().overload, OverloadPolicy::reject);
    EXPECT_TRUE(admission.should_accept(5));
    EXPECT_EQ(admission.decide(5, 0), Refusal::limit);
    EXPECT_EQ(admission.decide(4, 2), Refusal::per_source);

    admission.set_limits(limits(5, 0, OverloadPolicy::wait));
    EXPECT_FALSE(admission.should_accept(5));
    EXPECT_EQ(admission.decide(4, 2), Refusal::none);
}

} // namespace
} // namespace forkd
