// SPDX-License-Identifier: MIT
// listen = systemd: sockets passed by socket activation (LISTEN_FDS), driven by systemd's own
// systemd-socket-activate, which binds, waits for the first client, then execs forkd with fd 3.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

using namespace forkd::test;

namespace {

constexpr const char* activator = "/usr/bin/systemd-socket-activate";

DaemonOptions activated_on(std::uint16_t port) {
    DaemonOptions o;
    o.config_lines = {"listen = systemd"};
    o.launch_prefix = {activator, "-l", "127.0.0.1:" + std::to_string(port), "-E", "NOTIFY_SOCKET"};
    o.expect_ready = false;  // forkd only runs once the first client knocks
    return o;
}

} // namespace

TEST(SocketActivation, ServesOnThePassedSocketAndKeepsItAcrossReload) {
    if (access(activator, X_OK) != 0) GTEST_SKIP() << activator << " missing (package systemd)";
    const auto port = free_tcp_port();
    Daemon d(activated_on(port));
    forkd::UniqueFd first;
    // The activator binds a moment after it starts; it then owns the socket forkd inherits.
    ASSERT_TRUE(eventually([&] { return (first = connect_tcp(port)).valid(); })) << d.log();
    ASSERT_TRUE(echo_roundtrip(first.get(), "activated")) << d.log();
    ASSERT_TRUE(d.wait_notification("READY=1")) << d.log();
    EXPECT_TRUE(d.wait_log("event=listening address=127.0.0.1:" + std::to_string(port))) << d.log();

    d.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return d.count_log("event=reload result=ok") >= 1; })) << d.log();
    auto second = connect_tcp(port);
    ASSERT_TRUE(second.valid());
    EXPECT_TRUE(echo_roundtrip(second.get(), "still the same socket")) << d.log();
    EXPECT_EQ(d.count_log("event=listening"), 1u) << d.log();
}

TEST(SocketActivation, WithoutPassedSocketsStartFailsWithExit3) {
    DaemonOptions o;
    o.config_lines = {"listen = systemd"};
    o.expect_ready = false;
    Daemon d(o);
    auto status = d.wait_exit(10s);
    ASSERT_TRUE(status.has_value()) << d.log();
    EXPECT_EQ(*status, 3) << d.log();
    EXPECT_NE(d.log().find("no socket was passed"), std::string::npos) << d.log();
}
