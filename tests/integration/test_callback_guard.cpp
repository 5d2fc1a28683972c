// SPDX-License-Identifier: MIT
// No exception crosses an sd-event callback: a SIGHUP reload whose new listener the loop refuses
// (sd_event_add_io fails, made so by an LD_PRELOAD shim around epoll_ctl) throws inside the
// signal callback. The daemon logs it, keeps serving, answers forkctl, handles the next SIGHUP
// and still stops cleanly on SIGTERM.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <signal.h>

using namespace forkd::test;

namespace {

constexpr const char* refused_marker = "epoll-refuses-this";

using Lines = std::vector<std::string>;

Lines config_lines(std::uint16_t port, const Lines& handler_lines) {
    Lines lines = {"listen = 127.0.0.1:" + std::to_string(port)};
    lines.insert(lines.end(), handler_lines.begin(), handler_lines.end());
    return lines;
}

DaemonOptions with_refusing_epoll(std::uint16_t port, const Lines& handler_lines) {
    DaemonOptions o;
    o.config_lines = config_lines(port, handler_lines);
    o.env["LD_PRELOAD"] = std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_preload_epoll_refuses.so";
    o.env["FORKD_TEST_EPOLL_REFUSES"] = refused_marker;
    return o;
}

void reload_with_refused_listener(Daemon& d, std::uint16_t port, const Lines& handler_lines) {
    Lines lines = config_lines(port, handler_lines);
    lines.push_back("listen = unix:" + d.dir().file(std::string(refused_marker) + ".sock"));
    d.rewrite_config(lines);
}

std::size_t callback_failures(const Daemon& d) {
    return d.count_log("event=callback-failed source=signal");
}

void expect_serving(const Daemon& d, std::uint16_t port, const std::string& payload) {
    auto fd = connect_tcp(port);
    ASSERT_TRUE(fd.valid()) << d.log();
    EXPECT_TRUE(echo_roundtrip(fd.get(), payload)) << d.log();
    auto status = status_json(d);
    ASSERT_TRUE(status) << status.error().message();
    EXPECT_EQ(status->value("state", ""), "running") << status->dump();
}

void check_daemon_survives_a_throwing_callback(const Lines& handler_lines) {
    const auto port = free_tcp_port();
    Daemon d(with_refusing_epoll(port, handler_lines));
    expect_serving(d, port, "before");

    reload_with_refused_listener(d, port, handler_lines);
    ASSERT_TRUE(eventually([&] { return callback_failures(d) >= 1; })) << d.log();
    const auto failure = d.log_lines("event=callback-failed");
    ASSERT_FALSE(failure.empty());
    EXPECT_NE(failure[0].find("sd_event_add_io"), std::string::npos) << failure[0];
    EXPECT_NE(failure[0].find("No space left on device"), std::string::npos) << failure[0];
    EXPECT_TRUE(d.running());
    expect_serving(d, port, "after the throw");

    // The signal source is still enabled: the next SIGHUP is handled (and throws again).
    d.signal(SIGHUP);
    EXPECT_TRUE(eventually([&] { return callback_failures(d) >= 2; })) << d.log();
    expect_serving(d, port, "after the second throw");

    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(), 0) << d.log();
}

} // namespace

TEST(CallbackGuard, ExecDaemonKeepsServingAfterAReloadThrewInsideTheSignalCallback) {
    check_daemon_survives_a_throwing_callback(
        {"exec = " + std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_echo_loop"});
}

TEST(CallbackGuard, BuiltinDaemonKeepsServingAfterAReloadThrewInsideTheSignalCallback) {
    check_daemon_survives_a_throwing_callback({"handler = echo"});
}
