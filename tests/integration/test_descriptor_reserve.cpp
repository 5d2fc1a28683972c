// SPDX-License-Identifier: MIT
// A low RLIMIT_NOFILE and an exec'd handler: the master accepts only while the descriptors one
// connection needs are free, so 200 concurrent clients all wait their turn and are all served;
// none is accepted and then dropped (the stderr pipe failing with EMFILE), and the pause is
// logged.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace forkd::test;

TEST(DescriptorReserve, LowNofileMakesExecClientsWaitNeverDrops) {
    DaemonOptions o = config({"exec = " + std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_echo_loop",
                              "max-connections = 0"});
    o.rlimit_nofile = 40;
    Daemon d(o);
    const auto port = d.port();

    constexpr int clients = 200;
    std::atomic<int> served{0}, failed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i)
        threads.emplace_back([&, i] {
            auto fd = connect_tcp(port, "127.0.0.1", 30s);
            if (fd.valid() && echo_roundtrip(fd.get(), "client " + std::to_string(i) + "\n", 30s))
                ++served;
            else
                ++failed;
        });
    for (auto& t : threads) t.join();

    EXPECT_EQ(served, clients);
    EXPECT_EQ(failed, 0);
    // A descriptor that ran out after the accept shows as a handler that failed to start.
    EXPECT_EQ(d.count_log("event=handler-failed"), 0u) << d.log();
    EXPECT_EQ(d.count_log("event=refused"), 0u) << d.log();
    EXPECT_GT(d.count_log("event=accept-paused"), 0u) << d.log();
    auto status = forkctl(d, {"status"}, 10s);
    EXPECT_EQ(status.exit_code, 0) << status.err;
}
