// SPDX-License-Identifier: MIT
// Limits and timeouts: max-connections (wait and reject), max-per-source, idle and connection
// timeouts, and a master that runs out of file descriptors without spinning.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>


using namespace forkd::test;
using forkd::UniqueFd;

namespace {

// The client was closed at once and one refusal line names it with this reason and limit.
void expect_refused(const Daemon& d, const UniqueFd& client, const std::string& reason,
                    unsigned limit) {
    EXPECT_TRUE(wait_closed(client.get(), 3s)) << "the refused client was not closed";
    const std::string peer = peer_of(client);
    ASSERT_TRUE(eventually([&] { return !d.refusal_line(peer).empty(); }, 3s))
        << "no event=refused line for " << peer << ":\n" << d.log();
    const std::string line = d.refusal_line(peer);
    EXPECT_NE(line.find("reason=" + reason), std::string::npos) << line;
    EXPECT_NE(line.find("limit=" + std::to_string(limit)), std::string::npos) << line;
}

// [needs forkctl] refusals are counted in status.totals.rejected.
void expect_rejected_total(const Daemon& d, long expected) {
    auto status = status_json(d);
    ASSERT_TRUE(status.ok()) << "[needs forkctl] " << status.error().message();
    EXPECT_EQ(status->value("/totals/rejected"_json_pointer, -1L), expected) << status->dump();
}

constexpr std::uint64_t kSpinTicks = 40;  // 0.4 s of CPU in a 2 s window would be spinning

} // namespace

TEST(Limits, MaxConnectionsWaitQueuesTheNextClient) {
    Daemon d(config({"max-connections = 2", "overload = wait"}));
    auto a = served_client(d, "a");
    auto b = served_client(d, "b");
    ASSERT_TRUE(a.valid() && b.valid()) << "the first two clients were not served:\n" << d.log();

    auto c = connect_tcp(d.port());
    ASSERT_TRUE(c.valid()) << "with overload=wait the third client waits in the backlog";
    ASSERT_TRUE(send_all(c.get(), "c"));
    EXPECT_EQ(read_n(c.get(), 1, 700ms), "") << "served beyond max-connections = 2";
    EXPECT_EQ(d.children().size(), 2u);
    EXPECT_EQ(d.count_log("event=refused"), 0u) << "wait must not refuse:\n" << d.log();

    a.reset();
    EXPECT_EQ(read_n(c.get(), 1, 5s), "c") << "the waiting client was not served once a slot freed";
    EXPECT_TRUE(echo_roundtrip(b.get(), "still b"));
}

TEST(Limits, MaxConnectionsRejectClosesTheNextClientAtOnce) {
    Daemon d(config({"max-connections = 2", "overload = reject"}));
    auto a = served_client(d, "a");
    auto b = served_client(d, "b");
    ASSERT_TRUE(a.valid() && b.valid()) << "the first two clients were not served:\n" << d.log();

    auto c = connect_tcp(d.port());
    ASSERT_TRUE(c.valid());
    expect_refused(d, c, "limit", 2);
    EXPECT_EQ(d.children().size(), 2u);
    expect_rejected_total(d, 1);

    // The limit is about active connections: once one ends, a newcomer is served.
    a.reset();
    ASSERT_TRUE(eventually([&] { return d.children().size() == 1; }));
    auto e = connect_tcp(d.port());
    ASSERT_TRUE(e.valid());
    EXPECT_TRUE(echo_roundtrip(e.get(), "e"));
}

TEST(Limits, MaxPerSourceRejectsOnlyThatSource) {
    Daemon d(config({"max-per-source = 1"}));
    auto a = served_client(d, "a");
    ASSERT_TRUE(a.valid()) << "the first client was not served:\n" << d.log();

    auto b = connect_tcp(d.port());
    ASSERT_TRUE(b.valid());
    expect_refused(d, b, "per_source", 1);
    expect_rejected_total(d, 1);

    // Another loopback address is another source.
    auto other = connect_tcp_from(d.port(), "127.0.0.1", "127.0.0.2");
    ASSERT_TRUE(other.valid()) << "cannot connect from 127.0.0.2";
    EXPECT_TRUE(echo_roundtrip(other.get(), "other source"));

    a.reset();
    ASSERT_TRUE(eventually([&] { return d.children().size() == 1; }));
    auto c = connect_tcp(d.port());
    ASSERT_TRUE(c.valid());
    EXPECT_TRUE(echo_roundtrip(c.get(), "c")) << "the source's slot was not given back";
}

// On a UNIX listener the source is the client's uid (SO_PEERCRED): a second connection of the
// same user is refused, and the log names the user.
TEST(Limits, MaxPerSourceCountsUnixClientsByUid) {
    TempDir sockets;
    const std::string path = sockets.file("per-source.sock");
    DaemonOptions o;
    o.config_lines = {"listen = unix:" + path, "max-per-source = 1"};
    Daemon d(o);
    auto a = connect_unix(path);
    ASSERT_TRUE(a.valid());
    ASSERT_TRUE(echo_roundtrip(a.get(), "a")) << d.log();

    auto b = connect_unix(path);
    ASSERT_TRUE(b.valid());
    EXPECT_TRUE(wait_closed(b.get(), 3s)) << "the same uid's second connection was served";
    ASSERT_TRUE(d.wait_log("event=refused")) << d.log();
    const std::string line = d.log_lines("event=refused").back();
    EXPECT_NE(line.find("reason=per_source"), std::string::npos) << line;
    EXPECT_NE(line.find("uid=" + std::to_string(::getuid())), std::string::npos) << line;
    EXPECT_NE(line.find("unix:" + path), std::string::npos) << line;
    expect_rejected_total(d, 1);

    a.reset();
    ASSERT_TRUE(eventually([&] { return d.children().empty(); }));
    auto c = connect_unix(path);
    ASSERT_TRUE(c.valid());
    EXPECT_TRUE(echo_roundtrip(c.get(), "c")) << "the uid's count was not given back";
}

TEST(Timeouts, IdleTimeoutClosesASilentConnection) {
    Daemon d(config({"idle-timeout = 1"}));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    // Traffic at shorter intervals than the timeout keeps it open...
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(echo_roundtrip(fd.get(), "tick")) << "closed while active (round " << i << ")";
        std::this_thread::sleep_for(300ms);
    }
    // ...silence ends it.
    EXPECT_TRUE(wait_closed(fd.get(), 5s)) << "idle connection still open";
    EXPECT_TRUE(d.wait_log("event=connection-end")) << d.log();
    EXPECT_TRUE(eventually([&] { return d.children().empty(); }));
}

TEST(Timeouts, ConnectionTimeoutEndsEvenABusyConnection) {
    Daemon d(config({"connection-timeout = 1"}));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    const auto start = std::chrono::steady_clock::now();
    bool ended = false;
    while (std::chrono::steady_clock::now() - start < 8s) {
        if (!echo_roundtrip(fd.get(), "busy", 1s)) {
            ended = true;
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
    const auto lived = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(ended) << "a connection-timeout of 1 s did not end a busy connection in 8 s";
    EXPECT_TRUE(wait_closed(fd.get(), 3s));
    EXPECT_GE(lived, 900ms) << "ended before its timeout";
    EXPECT_TRUE(d.wait_log("event=connection-end")) << d.log();
    EXPECT_TRUE(eventually([&] { return d.children().empty(); }));
}

TEST(Timeouts, NoTimeoutByDefault) {
    Daemon d;
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(echo_roundtrip(fd.get(), "x"));
    EXPECT_FALSE(wait_closed(fd.get(), 2s)) << "closed although no timeout is configured";
    EXPECT_TRUE(echo_roundtrip(fd.get(), "still here"));
}

// Started with RLIMIT_NOFILE = 32 and offered 40 connections: whatever the master and the
// spawner can hold, neither may busy-loop on EMFILE, and they serve again once the connections
// are gone.
TEST(Resources, LowNofileLimitMakesNeitherProcessSpin) {
    DaemonOptions o = config({"max-connections = 0"});
    o.rlimit_nofile = 32;
    Daemon d(o);
    std::vector<UniqueFd> clients;
    for (int i = 0; i < 40; ++i) {
        auto fd = connect_tcp(d.port());
        ASSERT_TRUE(fd.valid()) << "connect " << i;
        ASSERT_TRUE(send_all(fd.get(), "x"));
        clients.push_back(std::move(fd));
    }
    std::this_thread::sleep_for(500ms);  // let the daemon reach whatever state it settles in
    const pid_t spawner = d.spawner_pid();
    ASSERT_GT(spawner, 0);
    const auto before = proc_cpu_ticks(d.pid()), spawner_before = proc_cpu_ticks(spawner);
    std::this_thread::sleep_for(2s);
    const auto used = proc_cpu_ticks(d.pid()) - before;
    const auto spawner_used = proc_cpu_ticks(spawner) - spawner_before;
    EXPECT_LT(used, kSpinTicks) << "master used " << used << " ticks in 2 s: spinning?";
    EXPECT_LT(spawner_used, kSpinTicks) << "spawner used " << spawner_used << " ticks in 2 s: spinning?";
    EXPECT_TRUE(d.running());

    clients.clear();
    EXPECT_TRUE(eventually([&] { return d.children().empty(); }, 15s))
        << d.children().size() << " handlers still alive";
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "recovered")) << d.log();
}

// The same with no free descriptor at all: every accept() fails with EMFILE until the limit is
// raised again (prlimit on the running master).
// Whoever accepts (the spawner for a built-in handler, the master for exec) pauses and
// recovers; the master logs it either way.
void expect_pause_at_emfile_then_recovery(Daemon& d, pid_t accepter, const char* who) {
    auto warm = connect_tcp(d.port());  // let the loop create whatever it creates lazily
    ASSERT_TRUE(warm.valid());
    ASSERT_TRUE(echo_roundtrip(warm.get(), "warm"));
    warm.reset();
    ASSERT_TRUE(eventually([&] { return d.children().empty(); }));

    rlimit original{};
    ASSERT_EQ(::prlimit(accepter, RLIMIT_NOFILE, nullptr, &original), 0);
    rlimit tight = original;
    tight.rlim_cur = static_cast<rlim_t>(proc_lowest_free_fd(accepter));
    ASSERT_EQ(::prlimit(accepter, RLIMIT_NOFILE, &tight, nullptr), 0);

    std::vector<UniqueFd> waiting;
    for (int i = 0; i < 5; ++i) {
        auto fd = connect_tcp(d.port());
        ASSERT_TRUE(fd.valid());
        ASSERT_TRUE(send_all(fd.get(), "w"));
        waiting.push_back(std::move(fd));
    }
    std::this_thread::sleep_for(300ms);
    const auto before = proc_cpu_ticks(accepter);
    std::this_thread::sleep_for(2s);
    const auto used = proc_cpu_ticks(accepter) - before;
    EXPECT_LT(used, kSpinTicks) << who << " used " << used << " ticks in 2 s at EMFILE: spinning?";
    EXPECT_TRUE(d.running()) << d.log();
    EXPECT_NE(d.log().find("event=accept-paused"), std::string::npos) << d.log();
    EXPECT_NE(d.log().find("Too many open files"), std::string::npos)
        << "precondition: the " << who << " should have met EMFILE (and the master logged it):\n"
        << d.log();

    ASSERT_EQ(::prlimit(accepter, RLIMIT_NOFILE, &original, nullptr), 0);
    for (std::size_t i = 0; i < waiting.size(); ++i)
        EXPECT_EQ(read_n(waiting[i].get(), 1, 10s), "w") << "client " << i << " never served";
}

TEST(Resources, NoFreeDescriptorPausesTheSpawnersAcceptsThenRecovers) {
    Daemon d;
    const pid_t spawner = d.spawner_pid();
    ASSERT_GT(spawner, 0);
    expect_pause_at_emfile_then_recovery(d, spawner, "spawner");
}

TEST(Resources, NoFreeDescriptorPausesTheMastersAcceptsThenRecovers) {
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:0",
                      "exec = " + std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_echo_loop"};
    Daemon d(o);
    expect_pause_at_emfile_then_recovery(d, d.pid(), "master");
}

// A fork that fails (here: RLIMIT_NPROC for an unprivileged forkd) refuses that one client,
// is counted and logged by reason, and the daemon serves again once a process slot frees.
TEST(Limits, ForkFailureRefusesThatClientAndTheDaemonRecovers) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run forkd as nobody under a process limit";
    DaemonOptions o = config({});
    // RLIMIT_NPROC counts every process of the uid: forkd, its forkd-spawner and two handlers.
    // The uid is one no other test (nor anything else) uses, so parallel tests cannot take its
    // slots.
    const std::string uid = std::to_string(50000 + ::getpid() % 10000);
    o.launch_prefix = {"/usr/bin/prlimit", "--nproc=4", "/usr/bin/setpriv", "--reuid=" + uid,
                       "--regid=" + uid, "--clear-groups"};
    // The run directory must be the daemon's own (a world-writable one is refused).
    o.before_start = [uid](const TempDir& dir) {
        const auto id = static_cast<uid_t>(std::stoul(uid));
        ASSERT_EQ(::chown(dir.path().c_str(), id, id), 0);
    };
    Daemon d(o);
    auto a = served_client(d, "a");
    auto b = served_client(d, "b");
    ASSERT_TRUE(a.valid() && b.valid()) << "the first two clients were not served:\n" << d.log();

    auto c = connect_tcp(d.port());
    ASSERT_TRUE(c.valid());
    EXPECT_TRUE(wait_closed(c.get(), 3s)) << "a client whose fork failed was not closed";
    ASSERT_TRUE(eventually([&] { return !d.refusal_line(peer_of(c)).empty(); }, 3s)) << d.log();
    EXPECT_NE(d.refusal_line(peer_of(c)).find("reason=fork_failed"), std::string::npos) << d.log();
    EXPECT_TRUE(d.wait_log("event=fork-failed")) << d.log();
    auto status = status_json(d);
    ASSERT_TRUE(status.ok()) << "[needs forkctl] " << status.error().message();
    EXPECT_EQ(status->value("/refused/fork_failed"_json_pointer, -1L), 1L) << status->dump();
    EXPECT_EQ(status->value("/totals/failed"_json_pointer, -1L), 1L) << status->dump();
    EXPECT_EQ(status->value("/active"_json_pointer, -1L), 2L) << status->dump();

    a.reset();
    ASSERT_TRUE(eventually([&] { return d.children().size() == 1; })) << d.log();
    auto e = connect_tcp(d.port());
    ASSERT_TRUE(e.valid());
    EXPECT_TRUE(echo_roundtrip(e.get(), "served again"));
}
