// SPDX-License-Identifier: MIT
// The callback guard and the source helpers on a real sd-event loop: a callback that throws is
// logged with its source's name, and the loop and every source (its own included) go on.
#include "daemon/event_loop/event_sources.hpp"

#include "common/base/unique_fd.hpp"
#include "common/log.hpp"

#include "captured_log.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace forkd {
namespace {

using event_loop::add_io;
using event_loop::add_periodic;
using event_loop::add_signal;
using event_loop::add_timer;

using test::CapturedLog;

EventPtr new_loop() {
    sd_event* event = nullptr;
    EXPECT_GE(sd_event_new(&event), 0);
    return EventPtr(event);
}

// Runs the loop until something calls sd_event_exit, at most ~2 s.
int run_loop(sd_event* event) {
    auto deadline = add_timer(event, 2000000, "test-deadline", [event] { sd_event_exit(event, 99); });
    EXPECT_TRUE(deadline.ok());
    return sd_event_loop(event);
}

TEST(CallbackGuard, AThrowingTimerIsLoggedAndTheLoopRunsItsOtherSources) {
    CapturedLog log;
    EventPtr loop = new_loop();
    auto failing = add_timer(loop.get(), 1000, "failing-timer",
                             [] { throw std::runtime_error("bad config value"); });
    auto later = add_timer(loop.get(), 20000, "later", [&] { sd_event_exit(loop.get(), 0); });
    ASSERT_TRUE(failing.ok() && later.ok());

    EXPECT_EQ(run_loop(loop.get()), 0);
    const auto failed = log.lines("event=callback-failed");
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_NE(failed[0].find("source=failing-timer"), std::string::npos) << failed[0];
    EXPECT_NE(failed[0].find("error=\"bad config value\""), std::string::npos) << failed[0];
}

TEST(CallbackGuard, AThrowingIoSourceStaysEnabledAndIsCalledAgain) {
    CapturedLog log;
    EventPtr loop = new_loop();
    int ends[2];
    ASSERT_EQ(::pipe2(ends, O_CLOEXEC | O_NONBLOCK), 0);
    UniqueFd read_end(ends[0]), write_end(ends[1]);
    int calls = 0;
    auto reader = add_io(loop.get(), read_end.get(), EPOLLIN, "pipe-reader", [&](std::uint32_t revents) {
        EXPECT_TRUE(revents & EPOLLIN);
        char byte;
        ASSERT_EQ(::read(read_end.get(), &byte, 1), 1);
        if (++calls == 1) throw std::system_error(EPROTO, std::generic_category(), "first read");
        sd_event_exit(loop.get(), 0);
    });
    ASSERT_TRUE(reader.ok());
    ASSERT_EQ(::write(write_end.get(), "ab", 2), 2);

    EXPECT_EQ(run_loop(loop.get()), 0);
    EXPECT_EQ(calls, 2);
    int enabled = SD_EVENT_OFF;
    sd_event_source_get_enabled(reader->get(), &enabled);
    EXPECT_EQ(enabled, SD_EVENT_ON);
    ASSERT_EQ(log.lines("source=pipe-reader").size(), 1u);
}

TEST(CallbackGuard, APeriodicTimerKeepsTickingAfterATickThrew) {
    CapturedLog log;
    EventPtr loop = new_loop();
    int ticks = 0;
    auto periodic = add_periodic(loop.get(), 1000, "ticker", [&] {
        if (++ticks == 3) sd_event_exit(loop.get(), 0);
        throw 42;  // not a std::exception
    });
    ASSERT_TRUE(periodic.ok());

    EXPECT_EQ(run_loop(loop.get()), 0);
    EXPECT_EQ(ticks, 3);
    const auto failed = log.lines("event=callback-failed source=ticker");
    ASSERT_EQ(failed.size(), 3u);
    EXPECT_NE(failed[0].find("error=\"unknown exception\""), std::string::npos) << failed[0];
}

TEST(CallbackGuard, ASignalSourceKeepsWorkingAfterItsCallbackThrew) {
    CapturedLog log;
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    ASSERT_EQ(sigprocmask(SIG_BLOCK, &mask, &old), 0);
    {
        EventPtr loop = new_loop();
        int received = 0;
        auto source = add_signal(loop.get(), SIGUSR1, "signal", [&](const signalfd_siginfo& info) {
            EXPECT_EQ(int(info.ssi_signo), SIGUSR1);
            if (++received == 1) {
                ::raise(SIGUSR1);
                throw std::runtime_error("reload failed hard");
            }
            sd_event_exit(loop.get(), 0);
        });
        ASSERT_TRUE(source.ok());
        ::raise(SIGUSR1);
        EXPECT_EQ(run_loop(loop.get()), 0);
        EXPECT_EQ(received, 2);
    }
    sigprocmask(SIG_SETMASK, &old, nullptr);
    EXPECT_EQ(log.lines("event=callback-failed source=signal").size(), 1u);
}

TEST(EventSources, TheCallableLivesAsLongAsItsSourceEvenWhenItDropsItself) {
    EventPtr loop = new_loop();
    auto alive = std::make_shared<int>(0);
    EventSourcePtr timer;
    auto added = add_timer(loop.get(), 1000, "self-dropping", [&, alive] {
        timer.reset();  // freed only once this call has returned
        ++*alive;
        sd_event_exit(loop.get(), 0);
    });
    ASSERT_TRUE(added.ok());
    timer = std::move(*added);
    EXPECT_EQ(alive.use_count(), 2);
    EXPECT_EQ(run_loop(loop.get()), 0);
    EXPECT_EQ(*alive, 1);
    EXPECT_EQ(alive.use_count(), 1);
}

TEST(EventSources, RearmMakesAFiredOneShotTimerDueAgain) {
    EventPtr loop = new_loop();
    int fired = 0;
    EventSourcePtr timer;
    auto added = add_timer(loop.get(), 1000, "rearmed", [&] {
        if (++fired == 2) return (void)sd_event_exit(loop.get(), 0);
        EXPECT_TRUE(event_loop::rearm(timer.get(), 1000).ok());
    });
    ASSERT_TRUE(added.ok());
    timer = std::move(*added);
    EXPECT_EQ(run_loop(loop.get()), 0);
    EXPECT_EQ(fired, 2);
}

TEST(EventSources, AFailedAddIsAnErrorAndValueOrThrowThrowsIt) {
    EventPtr loop = new_loop();
    auto added = add_io(loop.get(), -1, EPOLLIN, "bad-fd", [] {});
    ASSERT_FALSE(added.ok());
    EXPECT_EQ(added.error().code, EBADF);
    EXPECT_THROW(event_loop::value_or_throw(std::move(added)), std::system_error);
}

} // namespace
} // namespace forkd
