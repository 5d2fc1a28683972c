// SPDX-License-Identifier: MIT
// A flood of one event: a few lines per interval, then one summary with the count left out.
#include "daemon/master/log_throttle.hpp"

#include "captured_log.hpp"

#include <gtest/gtest.h>

namespace forkd {
namespace {

constexpr std::int64_t ms = 1000000;

TEST(LogThrottle, AFloodWritesAFewLinesThenOneSummaryPerInterval) {
    test::CapturedLog captured;
    LogThrottle throttle(3, 1000 * ms);
    unsigned allowed = 0;
    for (int i = 0; i < 1000; ++i) allowed += throttle.allow("refused", i * ms / 2);  // 0.5 s
    EXPECT_EQ(allowed, 3u);
    EXPECT_TRUE(throttle.allow("handler-failed", 10 * ms)) << "each event has its own budget";
    throttle.flush(900 * ms);
    EXPECT_TRUE(captured.lines("-suppressed").empty()) << "the interval is not over yet";
    throttle.flush(1000 * ms);
    const auto summaries = captured.lines("event=refused-suppressed");
    ASSERT_EQ(summaries.size(), 1u);
    EXPECT_NE(summaries[0].find("count=997 interval_ms=1000"), std::string::npos) << summaries[0];
    EXPECT_TRUE(captured.lines("event=handler-failed-suppressed").empty()) << "nothing was left out";
    // A new interval, a new budget; a quiet one writes no summary.
    EXPECT_TRUE(throttle.allow("refused", 1200 * ms));
    throttle.flush(5000 * ms);
    EXPECT_EQ(captured.lines("event=refused-suppressed").size(), 1u);
}

} // namespace
} // namespace forkd
