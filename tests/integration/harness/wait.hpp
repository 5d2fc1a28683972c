// SPDX-License-Identifier: MIT
#pragma once
// Waiting without sleeps of fixed length: the harness and the tests poll a condition instead.
#include <chrono>
#include <thread>

namespace forkd::test {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Milliseconds left until deadline, 0 once it has passed (a poll(2) timeout).
inline int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

// Polls predicate every 10 ms until true or timeout.
template <class Pred>
bool eventually(Pred pred, Millis timeout = 10s) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

} // namespace forkd::test
