// SPDX-License-Identifier: MIT
// 50 reloads under load, alternating broken files with good ones that add and remove a
// listener: no client connection fails, a broken file keeps the running config, and once the
// first config is back the master and forkd-spawner hold exactly the descriptors they held
// before (/proc/PID/fd): no leaked descriptor, no leftover listener.
#include "fault_support.hpp"

#include <gtest/gtest.h>

using namespace forkd::fault;

namespace {

using Lines = std::vector<std::string>;

const std::string kEchoLoop = std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_echo_loop";

struct Configs {
    Lines first, with_second_listener, broken;
};

Configs configs(std::uint16_t port, const std::string& unix_path, const Lines& handler) {
    const Lines tcp = {"listen = 127.0.0.1:" + std::to_string(port)};
    auto with = [&](Lines lines) {
        lines.insert(lines.begin(), tcp.begin(), tcp.end());
        lines.insert(lines.end(), handler.begin(), handler.end());
        return lines;
    };
    return {with({"max-connections = 64"}),
            with({"listen = unix:" + unix_path, "max-connections = 65"}),
            with({"max-connections = banana"})};
}

// Rewrites the config (SIGHUP; the config watch may add a reload of its own) and waits for a
// reload with that result.
void reload(Daemon& d, const Lines& lines, const std::string& result) {
    const std::string needle = "event=reload result=" + result;
    const auto before = d.count_log(needle);
    d.rewrite_config(lines);
    ASSERT_TRUE(eventually([&] { return d.count_log(needle) > before; }))
        << "no " << needle << ":\n" << ::testing::PrintToString(d.log_lines("event=reload"));
}

struct Descriptors {
    std::vector<std::string> master, spawner;
};

Descriptors descriptors(const Daemon& d) {
    const pid_t spawner = d.spawner_pid();
    return {proc_fd_targets(d.pid()), spawner > 0 ? proc_fd_targets(spawner) : std::vector<std::string>{}};
}

void expect_reload_storm_leaves_no_trace(const Lines& handler) {
    const auto port = free_tcp_port();
    DaemonOptions o;
    TempDir unix_dir;
    const auto c = configs(port, unix_dir.file("second.sock"), handler);
    o.config_lines = c.first;
    Daemon d(o);
    NotifyReader notify(d);
    reload(d, c.first, "ok");  // whatever a reload creates lazily exists from now on
    ASSERT_EQ(accounting_mismatch(d, 0), "");
    const auto before = descriptors(d);
    {
        EchoLoad load(port, 4, 10s);
        ASSERT_TRUE(load.progresses(20)) << d.log();
        for (int i = 0; i < 50; ++i) {
            SCOPED_TRACE("reload " + std::to_string(i));
            if (i % 2 == 0) reload(d, c.broken, "failed");
            else reload(d, (i / 2) % 2 ? c.first : c.with_second_listener, "ok");
        }
        reload(d, c.first, "ok");
        EXPECT_TRUE(load.progresses(20)) << d.log();
        load.stop();
        EXPECT_EQ(load.failed(), 0) << "clients failed during the reloads";
    }
    EXPECT_EQ(accounting_mismatch(d, 0), "");
    Descriptors after;
    EXPECT_TRUE(eventually([&] {
        after = descriptors(d);
        return after.master == before.master && after.spawner == before.spawner;
    })) << "master before " << ::testing::PrintToString(before.master) << "\nafter "
        << ::testing::PrintToString(after.master) << "\nspawner before "
        << ::testing::PrintToString(before.spawner) << "\nafter " << ::testing::PrintToString(after.spawner);
    const auto status = status_json(d);
    ASSERT_TRUE(status);
    EXPECT_EQ((*status)["listen"].size(), 1u) << status->dump();
}

} // namespace

TEST(FaultReload, FiftyReloadsUnderBuiltinLoadFailNoClientAndLeakNothing) {
    expect_reload_storm_leaves_no_trace({"handler = echo"});
}

TEST(FaultReload, FiftyReloadsUnderExecLoadFailNoClientAndLeakNothing) {
    expect_reload_storm_leaves_no_trace({"exec = " + kEchoLoop});
}
