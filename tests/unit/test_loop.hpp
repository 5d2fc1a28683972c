// SPDX-License-Identifier: MIT
#pragma once
// For unit tests: a fresh sd-event loop (a test fails if it cannot be made).
#include "daemon/event_loop/sd_event_ptr.hpp"

#include <gtest/gtest.h>

namespace forkd::test {

inline EventPtr new_loop() {
    sd_event* event = nullptr;
    EXPECT_GE(sd_event_new(&event), 0);
    return EventPtr(event);
}

} // namespace forkd::test
