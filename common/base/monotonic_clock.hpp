// SPDX-License-Identifier: MIT
#pragma once
// CLOCK_MONOTONIC in nanoseconds: ages, durations and deadlines never jump with the wall clock.
#include <time.h>

#include <cstdint>

namespace forkd {

inline std::int64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

} // namespace forkd
