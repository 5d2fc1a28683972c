// SPDX-License-Identifier: MIT
// A service manager that stops reading its notify socket (its datagram queue full): the master
// must not block in sending READY/RELOADING/STOPPING/STATUS. It keeps serving exec'd
// connections (which it accepts itself), answers forkctl, reloads, and stops at once on SIGTERM;
// the state changes that would have blocked reach the manager, in order, once it reads again.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

// Sends to the daemon's notify socket from a socket of our own until a send would block, as a
// manager that reads nothing would leave it.
int fill_notify_queue(const Daemon& d) {
    UniqueFd filler(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string path = d.dir().file("notify");
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    int sent = 0;
    while (::sendto(filler.get(), "filler", 6, MSG_DONTWAIT,
                    reinterpret_cast<const sockaddr*>(&address), sizeof address) == 6)
        ++sent;
    EXPECT_EQ(errno, EAGAIN) << std::strerror(errno);
    return sent;
}

// Echo round trips on fresh connections for about `how_long`; how many succeeded and failed.
std::pair<int, int> serve_for(std::uint16_t port, Millis how_long) {
    int served = 0, failed = 0;
    const auto end = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < end) {
        auto fd = connect_tcp(port, "127.0.0.1", 5s);
        if (fd.valid() && echo_roundtrip(fd.get(), "ping\n", 5s)) ++served;
        else ++failed;
    }
    return {served, failed};
}

std::size_t index_of(const std::vector<std::string>& messages, const std::string& prefix,
                     std::size_t from = 0) {
    for (std::size_t i = from; i < messages.size(); ++i)
        if (messages[i].starts_with(prefix)) return i;
    return messages.size();
}

} // namespace

TEST(NotifyStall, UnreadNotifySocketNeverBlocksTheMaster) {
    Daemon d(config({"listen = 127.0.0.1:0",
                     "exec = " + std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_echo_loop"}));
    ASSERT_GT(fill_notify_queue(d), 0);
    const std::size_t readies_before = d.notifications().size();  // the filler is in there now
    ASSERT_GT(fill_notify_queue(d), 0);

    d.signal(SIGHUP);  // RELOADING=1 and READY=1, both of which would block
    ASSERT_TRUE(d.wait_log("event=reload result=ok", 5s)) << d.log();
    // Over 2 s of connections the STATUS= text changes: its updates would block too.
    auto [served, failed] = serve_for(d.port(), 2s);
    EXPECT_GT(served, 10);
    EXPECT_EQ(failed, 0);
    auto status = forkctl(d, {"status"}, 5s);
    EXPECT_EQ(status.exit_code, 0) << status.err;

    // The manager reads again: what was held arrives, state changes in their order.
    ASSERT_TRUE(eventually([&] {
        auto messages = d.notifications();
        const auto reloading = index_of(messages, "RELOADING=1", readies_before);
        return index_of(messages, "READY=1", reloading) < messages.size();
    }, 5s)) << "RELOADING=1 then READY=1 never arrived";

    // It stops reading again; SIGTERM's STOPPING=1 would block, the stop must not wait for it.
    ASSERT_GT(fill_notify_queue(d), 0);
    const auto before_stop = std::chrono::steady_clock::now();
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
    EXPECT_LT(std::chrono::steady_clock::now() - before_stop, 3s);
}

// The keep-alive comes from the master's own timer, at half WATCHDOG_USEC.
TEST(NotifyStall, WatchdogKeepAliveIsSent) {
    DaemonOptions options;
    options.env["WATCHDOG_USEC"] = "400000";
    Daemon d(options);
    EXPECT_TRUE(d.wait_notification("WATCHDOG=1", 5s));
}
