// SPDX-License-Identifier: MIT
// Honest accounting: waits at the limit logged once and counted, endings named alike for
// built-in and exec'd handlers, reloads that say what changed, floods of failures summarised.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/socket.h>
#include <filesystem>
#include <unistd.h>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

std::string helper(const std::string& name) {
    return std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_" + name;
}

DaemonOptions with_lines(std::vector<std::string> lines, bool exec) {
    if (exec) lines.push_back("exec = " + helper("echo_loop"));
    return config(std::move(lines));
}

std::int64_t status_number(const Daemon& d, const std::string& pointer) {
    auto status = status_json(d);
    if (!status.ok()) return -1;
    return status->value(nlohmann::json::json_pointer(pointer), std::int64_t{-1});
}

// Two clients wait behind a full max-connections = 1: one wait, logged once when the first
// arrives and once when accepting resumes, counted in status.
void expect_one_wait(bool exec) {
    const std::string by = exec ? "by=master" : "by=spawner";
    Daemon d(with_lines({"max-connections = 1", "overload = wait"}, exec));
    auto served = served_client(d, "a");
    ASSERT_TRUE(served.valid()) << d.log();
    EXPECT_EQ(d.count_log("event=accept-waiting"), 0u) << "nobody waits yet:\n" << d.log();

    auto first = connect_tcp(d.port());
    auto second = connect_tcp(d.port());
    ASSERT_TRUE(first.valid() && second.valid());
    ASSERT_TRUE(d.wait_log("event=accept-waiting " + by + " limit=1 active=1", 5s)) << d.log();
    ASSERT_TRUE(eventually([&] { return status_number(d, "/limit_waits/episodes") == 1; }, 5s))
        << d.log();
    EXPECT_EQ(d.count_log("event=accept-waiting"), 1u) << d.log();

    served.reset();
    ASSERT_TRUE(echo_roundtrip(first.get(), "b")) << d.log();
    ASSERT_TRUE(d.wait_log("event=accept-resumed " + by + " limit=1 waited_ms=", 5s)) << d.log();
    EXPECT_GE(status_number(d, "/limit_waits/waited_ms"), 0);
    const auto human = forkctl(d, {"status"});
    EXPECT_NE(human.out.find("Waited: "), std::string::npos) << human.out;
}

} // namespace

TEST(Accounting, WaitAtTheLimitIsLoggedOnceAndCountedForExec) { expect_one_wait(true); }
TEST(Accounting, WaitAtTheLimitIsLoggedOnceAndCountedForBuiltIn) { expect_one_wait(false); }

namespace {

// A silent client and idle-timeout = 1: the same ending line and the same count, whoever serves.
void expect_idle_ending(bool exec) {
    Daemon d(with_lines({"idle-timeout = 1"}, exec));
    auto client = connect_tcp(d.port());
    ASSERT_TRUE(client.valid());
    ASSERT_TRUE(echo_roundtrip(client.get(), "x")) << d.log();
    EXPECT_TRUE(wait_closed(client.get(), 8s)) << "idle connection still open:\n" << d.log();
    ASSERT_TRUE(d.wait_log("event=connection-end")) << d.log();
    const auto ends = d.log_lines("event=connection-end");
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_NE(ends[0].find("ended_by=idle"), std::string::npos) << ends[0];
    ASSERT_TRUE(eventually([&] { return status_number(d, "/totals/killed") == 1; })) << d.log();
    EXPECT_EQ(status_number(d, "/totals/completed"), 0);
    EXPECT_EQ(status_number(d, "/totals/failed"), 0);
}

} // namespace

TEST(Accounting, IdleEndingOfABuiltInHandlerIsNamedAndCountedAsAnExecOne) {
    expect_idle_ending(false);
}
TEST(Accounting, IdleEndingOfAnExecHandlerIsNamedAndCountedAsABuiltInOne) {
    expect_idle_ending(true);
}

// The handler writes only after its client has gone: the SIGPIPE that ends it is the client's
// doing. On a UNIX socket whose peer closed with nothing unread, a write is always EPIPE (TCP, or
// a close with unread data, may say ECONNRESET and end the handler by an error instead).
TEST(Accounting, HandlerKilledBySigpipeAfterItsClientLeftCompleted) {
    TempDir sockets;
    const std::string path = sockets.file("yes.sock");
    Daemon d(config({"listen = unix:" + path, "exec = /bin/sh -c \"sleep 0.2; exec yes\""}));
    {
        auto client = connect_unix(path);
        ASSERT_TRUE(client.valid());
    }
    ASSERT_TRUE(d.wait_log("event=connection-end")) << d.log();
    const auto ends = d.log_lines("event=connection-end");
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_NE(ends[0].find("exit=signal:PIPE"), std::string::npos) << ends[0];
    EXPECT_NE(ends[0].find("ended_by=client"), std::string::npos) << ends[0];
    ASSERT_TRUE(eventually([&] { return status_number(d, "/totals/completed") == 1; })) << d.log();
    EXPECT_EQ(status_number(d, "/totals/failed"), 0);
}

// Nobody counts an exec'd handler's bytes on a UNIX socket: the end line says nothing of them.
TEST(Accounting, UnixExecConnectionLogsNoFalseZeroBytes) {
    TempDir sockets;
    const std::string path = sockets.file("exec.sock");
    Daemon d(config({"listen = unix:" + path, "exec = " + helper("echo_loop")}));
    {
        auto client = connect_unix(path);
        ASSERT_TRUE(client.valid());
        ASSERT_TRUE(echo_roundtrip(client.get(), "some bytes")) << d.log();
    }
    ASSERT_TRUE(d.wait_log("event=connection-end")) << d.log();
    const auto ends = d.log_lines("event=connection-end");
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_EQ(ends[0].find("bytes_in="), std::string::npos) << ends[0];
    EXPECT_EQ(ends[0].find("bytes_out="), std::string::npos) << ends[0];
}

// Every connection fails (the program is gone): 200 failures in a row write a bounded number of
// handler-failed lines, and summaries account for the rest; the totals stay exact.
TEST(Accounting, AFloodOfFailuresIsSummarisedNotLoggedLineByLine) {
    TempDir programs;
    const std::string program = programs.file("handler");
    std::filesystem::copy_file(helper("echo_loop"), program);
    Daemon d(config({"exec = " + program}));
    std::filesystem::remove(program);

    constexpr int kClients = 200;
    for (int i = 0; i < kClients; ++i) {
        auto client = connect_tcp(d.port());
        ASSERT_TRUE(client.valid());
        ASSERT_TRUE(wait_closed(client.get(), 5s)) << "client " << i;
    }
    ASSERT_TRUE(eventually([&] { return status_number(d, "/totals/failed") == kClients; }, 10s))
        << d.log();
    ASSERT_TRUE(d.wait_log("event=handler-failed-suppressed count=", 5s)) << d.log();
    // Once the last interval is over, every failure is a line or counted in a summary.
    std::uint64_t accounted = 0;
    ASSERT_TRUE(eventually([&] {
        accounted = d.count_log("event=handler-failed ");
        for (const auto& line : d.log_lines("event=handler-failed-suppressed")) {
            const auto at = line.find("count=") + 6;
            accounted += std::stoull(line.substr(at));
        }
        return accounted == kClients;
    }, 5s)) << accounted << " of " << kClients << " accounted:\n" << d.log();
    // Sequential clients take a few seconds at most: ten lines a second, and one summary each.
    EXPECT_LE(d.count_log("event=handler-failed "), 60u);
    EXPECT_LE(d.count_log("event=handler-failed"), 70u);
}

// The reply and the log list each option a reload changed, and say when it replaced a value set
// with forkctl set; a reload that changes nothing says so.
TEST(Accounting, ReloadListsWhatChangedAndWarnsOfRevertedSetValues) {
    Daemon d(config({"max-connections = 5"}));
    ASSERT_EQ(forkctl(d, {"set", "max-connections", "64"}).exit_code, 0);
    write_file(d.config_path(), d.harness_config_lines() +
                                    "listen = 127.0.0.1:0\nmax-connections = 256\nidle-timeout = 7\n");
    auto r = forkctl(d, {"reload"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("  max-connections 64 -> 256\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  idle-timeout 0 -> 7\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("note: max-connections had been set with forkctl set"), std::string::npos)
        << r.out;
    EXPECT_TRUE(d.wait_log("event=reload result=ok config=" + d.config_path() +
                           " changed=\"max-connections 64 -> 256, idle-timeout 0 -> 7\""))
        << d.log();
    EXPECT_TRUE(d.wait_log("event=reload-reverts-set option=max-connections set=64 now=256"))
        << d.log();

    auto again = forkctl(d, {"reload"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(again.out, "configuration reloaded: nothing changed\n");
    EXPECT_EQ(d.count_log("event=reload-reverts-set"), 1u) << d.log();
    EXPECT_TRUE(d.wait_log("changed=nothing")) << d.log();
}

// status names the program an exec'd handler runs, whom as, and the config file.
TEST(Accounting, StatusShowsTheExecProgramAndTheConfigFile) {
    Daemon d(config({"exec = " + helper("echo_loop") + " --flag"}));
    auto status = status_json(d);
    ASSERT_TRUE(status.ok()) << status.error().message();
    EXPECT_EQ((*status)["exec"], nlohmann::json({helper("echo_loop"), "--flag"})) << status->dump();
    EXPECT_TRUE((*status)["user"].is_null()) << status->dump();
    const auto human = forkctl(d, {"status"});
    EXPECT_NE(human.out.find("Handler: exec " + helper("echo_loop") + " --flag\n"), std::string::npos)
        << human.out;
    EXPECT_NE(human.out.find("Config: " + d.config_path() + "\n"), std::string::npos) << human.out;
}
