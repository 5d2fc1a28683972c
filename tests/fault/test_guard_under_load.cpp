// SPDX-License-Identifier: MIT
// The callback guard under load: reloads whose new listener the loop refuses (an LD_PRELOAD
// shim makes epoll_ctl fail, so sd_event_add_io throws inside the signal callback) while
// clients come and go. Each throw is logged, no client fails, the counts stay exact and the
// daemon still stops cleanly. (CallbackGuard in the integration tests does it once, idle.)
#include "fault_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>

using namespace forkd::fault;

namespace {

constexpr const char* kRefusedMarker = "epoll-refuses-this";

using Lines = std::vector<std::string>;

void expect_guard_holds_under_load(const Lines& handler) {
    const auto port = free_tcp_port();
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:" + std::to_string(port), "max-connections = 64"};
    o.config_lines.insert(o.config_lines.end(), handler.begin(), handler.end());
    o.env["LD_PRELOAD"] = std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_preload_epoll_refuses.so";
    o.env["FORKD_TEST_EPOLL_REFUSES"] = kRefusedMarker;
    Daemon d(o);
    NotifyReader notify(d);
    Lines refused = o.config_lines;
    refused.push_back("listen = unix:" + d.dir().file(std::string(kRefusedMarker) + ".sock"));
    {
        EchoLoad load(port, 4, 10s);
        ASSERT_TRUE(load.progresses(50)) << d.log();
        for (std::size_t throws = 1; throws <= 5; ++throws) {
            if (throws == 1) d.rewrite_config(refused);
            else d.signal(SIGHUP);
            ASSERT_TRUE(eventually([&] {
                return d.count_log("event=callback-failed source=signal") >= throws;
            })) << d.log().substr(0, 4000);
            ASSERT_TRUE(load.progresses(50)) << "no service after throw " << throws << "\n" << d.log();
        }
        load.stop();
        EXPECT_EQ(load.failed(), 0) << "clients failed while callbacks threw";
    }
    EXPECT_EQ(accounting_mismatch(d, 0), "");
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(), 0) << d.log().substr(0, 4000);
}

} // namespace

TEST(FaultGuard, ThrowingReloadsUnderBuiltinLoadFailNoClient) {
    expect_guard_holds_under_load({"handler = echo"});
}

TEST(FaultGuard, ThrowingReloadsUnderExecLoadFailNoClient) {
    expect_guard_holds_under_load(
        {"exec = " + std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_echo_loop"});
}
