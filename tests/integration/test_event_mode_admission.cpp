// SPDX-License-Identifier: MIT
// Admission control in event mode (forkd-worker admits as forkd-spawner does): allow/deny,
// max-per-source-rate, max-connection-rate split across the workers, busy-message at
// max-connections, and forkctl set reaching the workers. Deny/allow, reload and the global rate
// with reject in one worker: test_admission_control.cpp (AdmissionRules, EventMode). Clients
// bind 127.0.0.2, 127.0.0.3... to be different sources.
#include "admission_support.hpp"
#include "event_mode_support.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace forkd::test;
using forkd::UniqueFd;

TEST(EventModeAdmission, PerSourceRateRefusesOnlyThatSource) {
    Daemon d(event_config({"max-per-source-rate = 1/60"}));
    auto first = from(d, "127.0.0.2");
    ASSERT_TRUE(echo_roundtrip(first.get(), "first"));
    auto second = from(d, "127.0.0.2");
    expect_refused(d, second, "per_source_rate", "limit=1/60");
    auto other = from(d, "127.0.0.3");
    EXPECT_TRUE(echo_roundtrip(other.get(), "another source"));
    EXPECT_EQ(refused(d, "per_source_rate"), 1);
}

// Three workers share 3/60: whichever worker each client reaches, at most three are served.
TEST(EventModeAdmission, TheGlobalRateHoldsAcrossWorkers) {
    Daemon d(event_config({"workers = 3", "max-connection-rate = 3/60", "overload = reject"}));
    constexpr long clients = 9;
    long served = 0;
    for (long i = 0; i < clients; ++i) {
        auto c = connect_tcp(d.port());
        ASSERT_TRUE(c.valid());
        if (echo_roundtrip(c.get(), "x")) ++served;
    }
    EXPECT_GE(served, 1);
    EXPECT_LE(served, 3) << "the workers together exceeded max-connection-rate";
    ASSERT_TRUE(eventually([&] { return refused(d, "rate") == clients - served; }, 3s)) << d.log();
}

TEST(EventModeAdmission, BusyMessageReachesAClientRefusedAtMaxConnections) {
    Daemon d(event_config({"max-connections = 1", "overload = reject", "busy-message = full\\r\\n"}));
    auto held = connect_tcp(d.port());
    ASSERT_TRUE(echo_roundtrip(held.get(), "held"));
    auto refused_client = connect_tcp(d.port());
    ASSERT_TRUE(refused_client.valid());
    EXPECT_EQ(read_until_eof(refused_client.get(), 3s), "full\r\n");
    ASSERT_TRUE(eventually([&] { return refused(d, "limit") == 1; }, 3s)) << d.log();
    // forkctl set busy-message reaches the worker.
    ASSERT_EQ(forkctl(d, {"set", "busy-message", "later\\n"}).exit_code, 0);
    auto next = connect_tcp(d.port());
    ASSERT_TRUE(next.valid());
    EXPECT_EQ(read_until_eof(next.get(), 3s), "later\n");
    EXPECT_TRUE(echo_roundtrip(held.get(), "still served"));
}
