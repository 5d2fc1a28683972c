// SPDX-License-Identifier: MIT
// A client that connects to a service that talks (chargen, or an exec'd program that writes
// without end) and never reads: once its receive window is full nothing moves, and
// idle-timeout must end it that long after, judged by what moved on the wire and not by a send
// buffer that still takes bytes. Its bytes_out counts what reached the client, not megabytes
// that only ever sat in forkd's socket buffer.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <sys/ioctl.h>
#include <linux/sockios.h>

#include <chrono>
#include <string>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t bytes_waiting(int fd) {
    int n = 0;
    return ::ioctl(fd, SIOCINQ, &n) == 0 ? std::uint64_t(n) : 0;
}

std::uint64_t field(const std::string& line, const std::string& key) {
    const auto at = line.find(" " + key + "=");
    return at == std::string::npos ? UINT64_MAX : std::stoull(line.substr(at + key.size() + 2));
}

void expect_ended_soon_after_the_window_filled(const std::vector<std::string>& handler_lines) {
    std::vector<std::string> lines = handler_lines;
    lines.push_back("listen = 127.0.0.1:0");
    lines.push_back("idle-timeout = 2");
    DaemonOptions options;
    options.config_lines = lines;
    Daemon d(options);
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());

    // Never read: watch the receive queue grow until it stops, and the connection's end.
    std::uint64_t received = 0;
    auto last_growth = Clock::now();
    std::string end_line;
    ASSERT_TRUE(eventually([&] {
        if (const auto now = bytes_waiting(fd.get()); now != received) {
            received = now;
            last_growth = Clock::now();
        }
        const auto ends = d.log_lines("event=connection-end");
        if (!ends.empty()) end_line = ends.front();
        return !end_line.empty();
    }, 20s)) << "never ended\n" << d.log();
    const auto silent_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_growth).count();
    ASSERT_GT(received, 0u) << "precondition: the service sent something";
    EXPECT_GE(silent_ms, 1500) << "ended before idle-timeout = 2 had passed\n" << end_line;
    EXPECT_LT(silent_ms, 4500) << "ended " << silent_ms << " ms after data last moved\n" << end_line;

    const std::uint64_t bytes_out = field(end_line, "bytes_out");
    ASSERT_NE(bytes_out, UINT64_MAX) << end_line;
    const std::uint64_t slack = 64 * 1024;
    EXPECT_LE(bytes_out, received + slack) << "counted bytes the client never received: " << end_line
                                           << " (received " << received << ")";
    EXPECT_GE(bytes_out + slack, received) << end_line << " (received " << received << ")";
}

} // namespace

TEST(IdleNonReader, ChargenClientThatNeverReadsIsEndedByIdleTimeout) {
    expect_ended_soon_after_the_window_filled({"handler = chargen"});
}

TEST(IdleNonReader, ExecdWriterWhoseClientNeverReadsIsEndedByIdleTimeout) {
    expect_ended_soon_after_the_window_filled({"exec = /usr/bin/yes"});
}
