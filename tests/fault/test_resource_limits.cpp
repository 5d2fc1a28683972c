// SPDX-License-Identifier: MIT
// Exhausted resources under load: a chargen client that never reads, thousands of silent
// connections left to idle-timeout, a process limit (RLIMIT_NPROC) the forks run into, and a
// descriptor limit (RLIMIT_NOFILE) an exec'd service runs into. The daemon keeps serving,
// stays bounded, and counts what it could not do.
#include "fault_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

using namespace forkd::fault;
using forkd::UniqueFd;

namespace {

const std::string kEchoLoop = std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_echo_loop";

} // namespace

// A chargen client that never reads: once the socket buffers are full the handler waits; its
// memory, the spawner's and the master's stay where they were, and nobody spins.
TEST(FaultResources, ChargenClientThatNeverReadsKeepsEveryProcessBounded) {
    Daemon d(config({"handler = chargen"}));
    auto client = connect_tcp(d.port());
    ASSERT_TRUE(client.valid());
    ASSERT_TRUE(eventually([&] { return d.children().size() == 1; })) << d.log();
    const pid_t handler = d.children()[0], spawner = d.spawner_pid();
    std::this_thread::sleep_for(1s);  // the buffers fill
    const auto handler_before = footprint(handler), spawner_before = footprint(spawner),
               master_before = footprint(d.pid());
    const auto ticks_before = proc_cpu_ticks(handler);
    std::this_thread::sleep_for(4s);
    expect_rss_bounded(handler_before, footprint(handler), 512, "the chargen handler");
    expect_rss_bounded(spawner_before, footprint(spawner), 512, "forkd-spawner");
    expect_rss_bounded(master_before, footprint(d.pid()), 1024, "the master");
    EXPECT_LT(proc_cpu_ticks(handler) - ticks_before, 50u) << "the handler spins on a full socket";
    EXPECT_EQ(footprint(handler).fds, handler_before.fds);
    client.reset();
    EXPECT_EQ(accounting_mismatch(d, 0), "");
}

// Thousands of clients connect and never send: idle-timeout ends every one of them, and the
// count comes back to 0 with every handler gone.
TEST(FaultResources, ThousandsOfSilentConnectionsAreAllEndedByIdleTimeout) {
    const int connections = kSanitized ? 500 : 2000;  // ASan's handlers are several MB each
    raise_nofile_limit();
    Daemon d(config({"max-connections = " + std::to_string(connections), "idle-timeout = 2"}));
    NotifyReader notify(d);
    std::vector<UniqueFd> silent;
    for (int i = 0; i < connections; ++i) {
        silent.push_back(connect_tcp(d.port(), "127.0.0.1", 10s));
        ASSERT_TRUE(silent.back().valid()) << "connection " << i;
    }
    for (std::size_t i = 0; i < silent.size(); ++i)
        ASSERT_TRUE(wait_closed(silent[i].get(), 60s)) << "connection " << i << " outlived idle-timeout";
    EXPECT_EQ(accounting_mismatch(d, 0, 30s), "");
    EXPECT_EQ(counts(d).accepted, connections);
    auto again = served_client(d, "after the silent crowd");
    EXPECT_TRUE(again.valid()) << d.log();
}

// forkd running as an unprivileged uid under a process limit, clients churning: forks fail,
// each failure refuses exactly that client and is counted; the rest are served and the daemon
// serves normally once the load is gone. RLIMIT_NPROC does not bind root, hence the uid.
TEST(FaultResources, ProcessLimitUnderLoadRefusesAndCountsButKeepsServing) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run forkd as another uid under RLIMIT_NPROC";
    if (::access("/usr/bin/setpriv", X_OK) != 0 || ::access("/usr/bin/prlimit", X_OK) != 0)
        GTEST_SKIP() << "needs setpriv and prlimit (util-linux) to run forkd as another uid";
    DaemonOptions o = config({"max-connections = 64"});
    // The master, forkd-spawner and four handlers; a uid nothing else uses, so parallel tests
    // cannot take its process slots.
    const std::string uid = std::to_string(40000 + ::getpid() % 10000);
    o.launch_prefix = {"/usr/bin/prlimit", "--nproc=6", "/usr/bin/setpriv", "--reuid=" + uid,
                       "--regid=" + uid, "--clear-groups"};
    // The run directory must be the daemon's own (forkd refuses one others may write to).
    o.before_start = [id = static_cast<uid_t>(std::stoul(uid))](const TempDir& dir) {
        ASSERT_EQ(::chown(dir.path().c_str(), id, id), 0);
    };
    Daemon d(o);
    NotifyReader notify(d);
    {
        EchoLoad load(d.port(), 12, 5s);
        EXPECT_TRUE(eventually([&] { return load.served() >= 200 && load.failed() >= 20; }, 30s))
            << load.served() << " served, " << load.failed() << " failed\n" << d.log().substr(0, 4000);
        load.stop();
        EXPECT_EQ(accounting_mismatch(d, 0), "");
        const auto status = status_json(d);
        ASSERT_TRUE(status);
        EXPECT_EQ(status->value("/refused/fork_failed"_json_pointer, -1L), load.failed())
            << "every refused client, and only those, counted as fork-failed: " << status->dump();
    }
    for (int i = 0; i < 4; ++i) {
        auto c = served_client(d, "after the storm");
        EXPECT_TRUE(c.valid()) << "not served after the load\n" << d.log().substr(0, 4000);
    }
    EXPECT_TRUE(d.running());
}

// Issue 12 item 14: with a low descriptor limit an exec'd service accepted clients it then could not start (pipe2 for the handler's
// stderr failed with EMFILE) and closed them. forkd must keep a reserve for a connection's
// needs and pause accepting before it runs out, so clients wait as forkd(8) promises.
TEST(FaultResources, ExecServiceAtALowDescriptorLimitMakesClientsWaitNeverDrops) {
    DaemonOptions o = config({"max-connections = 0", "exec = " + kEchoLoop});
    o.rlimit_nofile = 40;
    Daemon d(o);
    NotifyReader notify(d);
    EchoLoad load(d.port(), 32, 30s);
    EXPECT_TRUE(eventually([&] { return load.served() >= 400; }, 60s)) << d.log().substr(0, 4000);
    load.stop();
    EXPECT_EQ(load.failed(), 0) << "clients accepted and then dropped at EMFILE\n" << d.log().substr(0, 4000);
    EXPECT_EQ(accounting_mismatch(d, 0), "");
    EXPECT_EQ(counts(d).failed, 0);
}
