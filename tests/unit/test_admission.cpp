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
    RuntimeLimits admission = limits(3, 0, OverloadPolicy::wait);
    EXPECT_TRUE(admits_more(admission, 0));
    EXPECT_TRUE(admits_more(admission, 2));
    EXPECT_FALSE(admits_more(admission, 3));
    EXPECT_FALSE(admits_more(admission, 4));  // over it, e.g. after the limit was lowered
}

TEST(Admission, WaitNeverRefusesAnAcceptedConnectionForTheLimit) {
    RuntimeLimits admission = limits(3, 0, OverloadPolicy::wait);
    EXPECT_EQ(admission_refusal(admission, 2, 0), Refusal::none);
    EXPECT_EQ(admission_refusal(admission, 3, 0), Refusal::none);
    EXPECT_EQ(admission_refusal(admission, 9, 0), Refusal::none);
}

TEST(Admission, RejectKeepsAcceptingAndRefusesAtOrOverTheLimit) {
    RuntimeLimits admission = limits(3, 0, OverloadPolicy::reject);
    for (std::uint32_t active : {0u, 2u, 3u, 100u}) EXPECT_TRUE(admits_more(admission, active)) << active;
    EXPECT_EQ(admission_refusal(admission, 0, 0), Refusal::none);
    EXPECT_EQ(admission_refusal(admission, 2, 0), Refusal::none);
    EXPECT_EQ(admission_refusal(admission, 3, 0), Refusal::limit);
    EXPECT_EQ(admission_refusal(admission, 4, 0), Refusal::limit);
}

TEST(Admission, ZeroMeansUnlimited) {
    for (OverloadPolicy overload : {OverloadPolicy::wait, OverloadPolicy::reject}) {
        RuntimeLimits admission = limits(0, 0, overload);
        EXPECT_TRUE(admits_more(admission, 1'000'000));
        EXPECT_EQ(admission_refusal(admission, 1'000'000, 1000), Refusal::none);
    }
}

// The counts themselves are the scoreboard's (test_shared_sources.cpp, test_source_counts.cpp).
TEST(Admission, PerSourceRefusesAtTheSourcesLimit) {
    for (OverloadPolicy overload : {OverloadPolicy::wait, OverloadPolicy::reject}) {
        RuntimeLimits admission = limits(0, 2, overload);
        EXPECT_EQ(admission_refusal(admission, 0, 0), Refusal::none);
        EXPECT_EQ(admission_refusal(admission, 1, 1), Refusal::none);
        EXPECT_EQ(admission_refusal(admission, 2, 2), Refusal::per_source);
        EXPECT_EQ(admission_refusal(admission, 2, 3), Refusal::per_source);
        EXPECT_TRUE(admits_more(admission, 2));  // per-source never stops the listeners
    }
}

TEST(Admission, GlobalLimitWinsOverPerSourceWithReject) {
    RuntimeLimits admission = limits(2, 1, OverloadPolicy::reject);
    EXPECT_EQ(admission_refusal(admission, 2, 1), Refusal::limit);
    EXPECT_EQ(admission_refusal(admission, 2, 0), Refusal::limit);
    EXPECT_EQ(admission_refusal(admission, 1, 1), Refusal::per_source);
    EXPECT_EQ(admission_refusal(admission, 1, 0), Refusal::none);
}

TEST(Admission, PerSourceStillAppliesUnderWaitAtTheLimit) {
    RuntimeLimits admission = limits(2, 1, OverloadPolicy::wait);
    EXPECT_FALSE(admits_more(admission, 2));
    EXPECT_EQ(admission_refusal(admission, 2, 1), Refusal::per_source);
    EXPECT_EQ(admission_refusal(admission, 2, 0), Refusal::none);
}

TEST(Admission, NewLimitsApplyToTheNextDecision) {
    RuntimeLimits admission = limits(10, 0, OverloadPolicy::wait);
    EXPECT_EQ(admission_refusal(admission, 5, 2), Refusal::none);
    EXPECT_TRUE(admits_more(admission, 5));

    admission = limits(5, 2, OverloadPolicy::reject);
    EXPECT_EQ(admission.max_connections, 5u);
    EXPECT_EQ(admission.overload, OverloadPolicy::reject);
    EXPECT_TRUE(admits_more(admission, 5));
    EXPECT_EQ(admission_refusal(admission, 5, 0), Refusal::limit);
    EXPECT_EQ(admission_refusal(admission, 4, 2), Refusal::per_source);

    admission = limits(5, 0, OverloadPolicy::wait);
    EXPECT_FALSE(admits_more(admission, 5));
    EXPECT_EQ(admission_refusal(admission, 4, 2), Refusal::none);
}

} // namespace
} // namespace forkd
