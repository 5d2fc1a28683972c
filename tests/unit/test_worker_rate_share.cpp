// SPDX-License-Identifier: MIT
// max-connection-rate split across event mode's workers (worker_pool.hpp rate_share): together
// they keep the configured count, none gets 0 (which would mean no limit).
#include "daemon/master/worker_pool.hpp"

#include <gtest/gtest.h>

namespace forkd {
namespace {

std::uint32_t total(std::uint32_t count, std::size_t workers) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < workers; ++i) sum += rate_share(count, workers, i);
    return sum;
}

TEST(WorkerRateShare, TheSharesAddUpToTheConfiguredCount) {
    EXPECT_EQ(rate_share(10, 1, 0), 10u);
    EXPECT_EQ(rate_share(10, 3, 0), 4u);
    EXPECT_EQ(rate_share(10, 3, 1), 3u);
    EXPECT_EQ(rate_share(10, 3, 2), 3u);
    for (std::uint32_t count : {4u, 7u, 100u, 1001u})
        for (std::size_t workers : {1u, 2u, 3u, 4u}) EXPECT_EQ(total(count, workers), count) << count << "/" << workers;
}

TEST(WorkerRateShare, NoRateStaysNoneAndNoWorkerGetsZero) {
    EXPECT_EQ(rate_share(0, 4, 2), 0u);
    EXPECT_EQ(rate_share(2, 4, 3), 1u) << "fewer than the workers: each at least 1";
    EXPECT_EQ(rate_share(5, 0, 0), 5u);
}

} // namespace
} // namespace forkd
