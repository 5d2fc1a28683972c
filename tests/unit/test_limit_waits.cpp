// SPDX-License-Identifier: MIT
// Waits at the limit: one log line when a wait begins, one when it ends, and exact totals.
#include "daemon/master/limit_waits.hpp"

#include "captured_log.hpp"

#include <gtest/gtest.h>

namespace forkd {
namespace {

constexpr std::int64_t ms = 1000000;

TEST(LimitWaits, EachWaitIsLoggedOnceAndTimed) {
    test::CapturedLog captured;
    LimitWaits waits;
    const LimitWaits::Context context{"master", 5, 5};
    waits.update(true, 100 * ms, context);
    waits.update(true, 150 * ms, context);  // still the same wait
    EXPECT_TRUE(waits.waiting());
    EXPECT_EQ(waits.waited_ms(130 * ms), 30u);  // the current wait so far
    waits.update(false, 400 * ms, context);
    waits.update(false, 500 * ms, context);
    waits.update(true, 1000 * ms, context);
    waits.update(false, 1100 * ms, context);
    EXPECT_EQ(waits.episodes(), 2u);
    EXPECT_EQ(waits.waited_ms(5000 * ms), 400u);
    EXPECT_EQ(captured.lines("event=accept-waiting by=master limit=5 active=5").size(), 2u);
    EXPECT_EQ(captured.lines("event=accept-resumed by=master limit=5 waited_ms=300").size(), 1u);
    EXPECT_EQ(captured.lines("event=accept-resumed by=master limit=5 waited_ms=100").size(), 1u);
}

} // namespace
} // namespace forkd
