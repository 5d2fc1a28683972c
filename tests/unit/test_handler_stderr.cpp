// SPDX-License-Identifier: MIT
#include "daemon/master/handler_stderr.hpp"

#include "common/log.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"

#include "captured_log.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace forkd {
namespace {

using test::CapturedLog;

struct Pipe {
    UniqueFd read, write;
    Pipe() {
        int ends[2];
        EXPECT_EQ(::pipe2(ends, O_CLOEXEC), 0);
        read.reset(ends[0]);
        write.reset(ends[1]);
        ::fcntl(read.get(), F_SETFL, O_NONBLOCK);
    }
};

EventPtr new_loop() {
    sd_event* event = nullptr;
    EXPECT_GE(sd_event_new(&event), 0);
    return EventPtr(event);
}

void run_until_finished(sd_event* event, const HandlerStderr& reader) {
    for (int i = 0; i < 100 && !reader.finished(); ++i) sd_event_run(event, 100000);
}

TEST(HandlerStderr, LogsEachLineWithTheConnectionIdAndFlushesThePartialOneAtEof) {
    CapturedLog captured;
    auto event = new_loop();
    Pipe pipe;
    HandlerStderr reader(event.get(), std::move(pipe.read), 42);
    std::string data = "first line\nsecond\r\nno newline at end";
    ASSERT_EQ(::write(pipe.write.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
    pipe.write.reset();
    run_until_finished(event.get(), reader);
    EXPECT_TRUE(reader.finished());
    std::vector<std::string> expected = {
        "event=handler-stderr id=42 line=\"first line\"",
        "event=handler-stderr id=42 line=second",
        "event=handler-stderr id=42 line=\"no newline at end\"",
    };
    EXPECT_EQ(captured.lines(), expected);
}

TEST(HandlerStderr, SplitsOverlongLines) {
    CapturedLog captured;
    auto event = new_loop();
    Pipe pipe;
    HandlerStderr reader(event.get(), std::move(pipe.read), 1);
    std::string data(5000, 'x');
    data += "\n";
    ASSERT_EQ(::write(pipe.write.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
    pipe.write.reset();
    run_until_finished(event.get(), reader);
    auto lines = captured.lines();
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0], "event=handler-stderr id=1 line=" + std::string(4096, 'x'));
    EXPECT_EQ(lines[1], "event=handler-stderr id=1 line=" + std::string(904, 'x'));
}

TEST(HandlerStderr, DestroyingItLogsWhatIsAlreadyInThePipe) {
    CapturedLog captured;
    auto event = new_loop();
    Pipe pipe;
    {
        HandlerStderr reader(event.get(), std::move(pipe.read), 9);
        std::string data = "written before the reap\nhalf";
        ASSERT_EQ(::write(pipe.write.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
        // A grandchild still holds the write end: no EOF, the owner gives up at reap time.
    }
    std::vector<std::string> expected = {
        "event=handler-stderr id=9 line=\"written before the reap\"",
        "event=handler-stderr id=9 line=half",
    };
    EXPECT_EQ(captured.lines(), expected);
}

} // namespace
} // namespace forkd
