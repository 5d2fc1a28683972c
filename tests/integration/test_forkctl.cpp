// SPDX-License-Identifier: MIT
// forkctl against the real forkd: every command and its exit code, the live counters, runtime
// limits, drain/resume, reload, stop, kill, authorisation by SO_PEERCRED, and a control socket
// that shrugs off garbage, oversize and slow clients.
#include "harness.hpp"

#include "common/control/control_protocol.hpp"

#include <gtest/gtest.h>

#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <atomic>
#include <future>
#include <thread>

using namespace forkd::test;
using forkd::UniqueFd;
using nlohmann::json;

namespace {

constexpr uid_t nobody = 65534;

json json_of(const CommandResult& r) {
    try {
        return json::parse(r.out);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "not one JSON document (" << e.what() << "): " << r.out << r.err;
        return nullptr;
    }
}

json status_of(const Daemon& d) {
    auto r = forkctl(d, {"--json", "status"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json_of(r);
}

std::int64_t active_of(const Daemon& d) {
    json status = status_of(d);
    return status.is_object() ? status.value("active", std::int64_t{-1}) : -1;
}

// An echo connection that is known to be served (its handler runs).
UniqueFd served_connection(const Daemon& d) {
    UniqueFd fd = served_client(d, "ping");
    EXPECT_TRUE(fd.valid()) << "not connected, or not echoed";
    return fd;
}

// The daemon still does its job: a fresh connection is echoed.
bool still_serving(const Daemon& d) { return served_client(d, "still there?").valid(); }

// One raw exchange on the control socket, as a script would do it.
std::string raw_request(const Daemon& d, const std::string& bytes, Millis timeout = 5s) {
    UniqueFd fd = connect_unix(d.control_socket());
    EXPECT_TRUE(fd.valid());
    send_all(fd.get(), bytes);
    return read_until_eof(fd.get(), timeout);
}

forkd::control::Reply reply_of(const std::string& line) {
    return forkd::control::parse_reply(line.substr(0, line.find('\n')));
}

// forkctl as another user: setpriv drops to UID with primary group GID and the given
// supplementary groups (none when empty).
CommandResult forkctl_as(const Daemon& d, uid_t uid, gid_t gid, const std::vector<gid_t>& groups,
                         const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"setpriv", "--reuid=" + std::to_string(uid), "--regid=" + std::to_string(gid)};
    if (groups.empty()) {
        argv.push_back("--clear-groups");
    } else {
        std::string list;
        for (gid_t g : groups) {
            if (!list.empty()) list += ',';
            list += std::to_string(g);
        }
        argv.push_back("--groups=" + list);
    }
    auto forkctl_words = forkctl_argv(d, args);
    argv.insert(argv.end(), forkctl_words.begin(), forkctl_words.end());
    return run(argv);
}

bool can_switch_users() { return ::geteuid() == 0 && ::access("/usr/bin/setpriv", X_OK) == 0; }

// The temp dir is private (0700); other users need to traverse it to reach the socket.
void open_dir_to_others(const Daemon& d) { ASSERT_EQ(::chmod(d.dir().path().c_str(), 0711), 0); }

} // namespace

// ---- reading -----------------------------------------------------------------------------------

TEST(Forkctl, StatusForPeopleAndForScripts) {
    Daemon d;
    auto human = forkctl(d, {"status"});
    EXPECT_EQ(human.exit_code, 0) << human.err;
    EXPECT_NE(human.out.find("State: running"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("PID: " + std::to_string(d.pid())), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("127.0.0.1:" + std::to_string(d.port())), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("Active: 0 of 256"), std::string::npos) << human.out;

    json status = status_of(d);
    ASSERT_TRUE(status.is_object());
    EXPECT_EQ(status["pid"], d.pid());
    EXPECT_EQ(status["state"], "running");
    EXPECT_EQ(status["accepting"], true);
    EXPECT_EQ(status["active"], 0);
    EXPECT_EQ(status["handler"], "echo");
    EXPECT_TRUE(status["instance"].is_null());
    EXPECT_TRUE(status["uptime_s"].is_number());
    EXPECT_EQ(status["limits"]["max_connections"], 256);
    EXPECT_EQ(status["limits"]["overload"], "wait");
    EXPECT_EQ(status["listen"], json::array({"127.0.0.1:" + std::to_string(d.port())}));
    for (auto key : {"accepted", "completed", "rejected", "killed", "failed"})
        EXPECT_TRUE(status["totals"][key].is_number()) << key;

    // --json after the command means the same.
    EXPECT_EQ(json_of(forkctl(d, {"status", "--json"}))["pid"], d.pid());
}

TEST(Forkctl, ListShowsEachConnection) {
    Daemon d;
    EXPECT_EQ(forkctl(d, {"list"}).out, "no active connections\n");
    EXPECT_EQ(json_of(forkctl(d, {"--json", "list"})), json::array());

    UniqueFd a = served_connection(d), b = served_connection(d);
    auto r = forkctl(d, {"--json", "list"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json rows = json_of(r);
    ASSERT_EQ(rows.size(), 2u) << rows.dump();
    auto children = d.children();
    std::vector<std::string> peers;
    for (const auto& row : rows) {
        EXPECT_TRUE(row["id"].is_number_unsigned());
        EXPECT_TRUE(row["age_s"].is_number());
        pid_t pid = row["pid"].get<pid_t>();
        EXPECT_NE(std::find(children.begin(), children.end(), pid), children.end()) << "pid " << pid;
        peers.push_back(row["peer"].get<std::string>());
    }
    for (const UniqueFd* fd : {&a, &b}) {
        std::string peer = "127.0.0.1:" + std::to_string(local_port(fd->get()));
        EXPECT_NE(std::find(peers.begin(), peers.end(), peer), peers.end()) << peer;
    }

    auto human = forkctl(d, {"list"});
    EXPECT_EQ(human.exit_code, 0);
    EXPECT_EQ(human.out.rfind("ID", 0), 0u) << human.out;
    EXPECT_NE(human.out.find("PEER"), std::string::npos);
    EXPECT_NE(human.out.find("127.0.0.1:" + std::to_string(local_port(a.get()))), std::string::npos) << human.out;
}

TEST(Forkctl, ActiveEqualsLiveHandlersWhileConnectionsChurn) {
    Daemon d;
    constexpr int held = 4, churners = 3, rounds = 60;
    std::vector<UniqueFd> steady;
    for (int i = 0; i < held; ++i) steady.push_back(served_connection(d));
    ASSERT_TRUE(eventually([&] { return active_of(d) == held; }));

    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < churners; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < rounds && !failed; ++i) {
                UniqueFd fd = connect_tcp(d.port());
                if (!fd.valid() || !echo_roundtrip(fd.get(), "churn")) failed = true;
            }
        });
    // Mid-churn a handler that has released its slot may still be exiting, so only bounds hold:
    // the steady connections always count, and the counter never runs away (or wraps).
    for (int sample = 0; sample < 20; ++sample) {
        std::int64_t active = active_of(d);
        EXPECT_GE(active, held);
        EXPECT_LE(active, held + churners * rounds);
    }
    for (auto& t : threads) t.join();
    EXPECT_FALSE(failed);

    // At rest the count is exact, both ways.
    ASSERT_TRUE(eventually([&] { return d.children().size() == held; }));
    EXPECT_EQ(active_of(d), held);
    steady.clear();
    ASSERT_TRUE(eventually([&] { return d.children().empty(); }));
    EXPECT_EQ(active_of(d), 0);
    EXPECT_EQ(status_of(d)["totals"]["accepted"], held + churners * rounds);
}

// ---- set -----------------------------------------------------------------------------------------

TEST(Forkctl, SetMaxConnectionsTakesEffectForNewConnections) {
    DaemonOptions options;
    options.config_lines = {"listen = 127.0.0.1:0", "max-connections = 10", "overload = reject"};
    Daemon d(options);
    UniqueFd a = served_connection(d), b = served_connection(d), c = served_connection(d);

    auto r = forkctl(d, {"set", "max-connections", "2"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(status_of(d)["limits"]["max_connections"], 2);
    // Lowering the limit below the active count kills nothing...
    EXPECT_TRUE(echo_roundtrip(a.get(), "a lives"));
    EXPECT_TRUE(echo_roundtrip(c.get(), "c lives"));
    EXPECT_EQ(active_of(d), 3);
    // ...but the next connection is over the limit and refused at once (overload = reject).
    UniqueFd refused = connect_tcp(d.port());
    ASSERT_TRUE(refused.valid());
    EXPECT_TRUE(wait_closed(refused.get(), 3s));

    // Raising it lets new connections in.
    EXPECT_EQ(forkctl(d, {"set", "max-connections", "5"}).exit_code, 0);
    UniqueFd e = served_connection(d);
    EXPECT_EQ(active_of(d), 4);
}

TEST(Forkctl, SetEveryKey) {
    Daemon d;
    for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"max-per-source", "3"}, {"connection-timeout", "60"}, {"idle-timeout", "30"},
             {"overload", "reject"}, {"log-level", "info"}, {"max-connections", "7"}}) {
        auto r = forkctl(d, {"set", key, value});
        EXPECT_EQ(r.exit_code, 0) << key << ": " << r.err;
        EXPECT_NE(r.out.find(key), std::string::npos) << r.out;
    }
    json limits = status_of(d)["limits"];
    EXPECT_EQ(limits["max_per_source"], 3);
    EXPECT_EQ(limits["connection_timeout"], 60);
    EXPECT_EQ(limits["idle_timeout"], 30);
    EXPECT_EQ(limits["overload"], "reject");
    EXPECT_EQ(limits["max_connections"], 7);
    EXPECT_TRUE(d.wait_log("command=set result=ok"));

    auto bad = forkctl(d, {"set", "max-connections", "many"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("forkctl: set: "), std::string::npos) << bad.err;
    EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
    auto json_bad = forkctl(d, {"--json", "set", "overload", "sometimes"});
    EXPECT_EQ(json_bad.exit_code, 1);
    EXPECT_EQ(json_of(json_bad)["ok"], false);
    EXPECT_EQ(status_of(d)["limits"]["overload"], "reject") << "a refused set changes nothing";
    // The same range as in the config file: a timeout of over a year is refused.
    auto too_long = forkctl(d, {"set", "idle-timeout", "40000000"});
    EXPECT_EQ(too_long.exit_code, 1) << too_long.err;
    EXPECT_EQ(status_of(d)["limits"]["idle_timeout"], 30);
}

// ---- drain and resume ------------------------------------------------------------------------------

TEST(Forkctl, DrainHoldsNewConnectionsAndResumeServesThem) {
    Daemon d;
    auto r = forkctl(d, {"drain"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json status = status_of(d);
    EXPECT_EQ(status["state"], "draining");
    EXPECT_EQ(status["accepting"], false);

    UniqueFd waiting = connect_tcp(d.port());  // sits in the backlog
    ASSERT_TRUE(waiting.valid());
    ASSERT_TRUE(send_all(waiting.get(), "held"));
    EXPECT_EQ(read_n(waiting.get(), 4, 300ms), "") << "a draining forkd served a new connection";

    EXPECT_EQ(forkctl(d, {"resume"}).exit_code, 0);
    EXPECT_EQ(status_of(d)["state"], "running");
    EXPECT_EQ(read_n(waiting.get(), 4, 5s), "held");
    EXPECT_TRUE(d.wait_log("command=drain result=ok"));
    EXPECT_TRUE(d.wait_log("command=resume result=ok"));
}

TEST(Forkctl, DrainWaitReturnsWhenTheLastConnectionEnds) {
    Daemon d;
    UniqueFd a = served_connection(d), b = served_connection(d);
    std::atomic<bool> done{false};
    auto waiter = std::async(std::launch::async, [&] {
        auto r = forkctl(d, {"drain", "--wait", "--timeout", "30"}, 40s);
        done = true;
        return r;
    });
    ASSERT_TRUE(eventually([&] { return status_of(d)["state"] == "draining"; }));
    a.reset();
    ASSERT_TRUE(eventually([&] { return active_of(d) == 1; }));
    EXPECT_FALSE(done) << "drain --wait returned with a connection still active";
    b.reset();
    auto r = waiter.get();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("draining: 2 connections still active\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("drained"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find('\r'), std::string::npos) << "plain lines when stdout is not a terminal";
    EXPECT_EQ(active_of(d), 0);
}

TEST(Forkctl, DrainWaitGivesUpAtItsTimeout) {
    Daemon d;
    UniqueFd a = served_connection(d);
    auto r = forkctl(d, {"drain", "--wait", "--timeout", "0.5"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("forkctl: drain: 1 connection still active after 0.5 s"), std::string::npos) << r.err;
    // It times out, not the drain: the message says forkd stays draining.
    EXPECT_NE(r.err.find("forkd is still draining"), std::string::npos) << r.err;
    EXPECT_TRUE(echo_roundtrip(a.get(), "untouched"));
    EXPECT_EQ(status_of(d)["state"], "draining");

    auto j = forkctl(d, {"--json", "drain", "--wait", "--timeout", "0.2"});
    EXPECT_EQ(j.exit_code, 1);
    EXPECT_EQ(json_of(j)["ok"], false);
}

// ---- reload --------------------------------------------------------------------------------------

TEST(Forkctl, ReloadOfABrokenFileKeepsTheRunningConfig) {
    DaemonOptions options;
    options.config_lines = {"listen = 127.0.0.1:0", "max-connections = 20"};
    Daemon d(options);
    const std::string good = read_file(d.config_path());
    const std::size_t lines = static_cast<std::size_t>(std::count(good.begin(), good.end(), '\n'));
    write_file(d.config_path(), good + "max-connections = lots\n");

    auto r = forkctl(d, {"reload"});
    EXPECT_EQ(r.exit_code, 1);
    const std::string where = d.config_path() + ":" + std::to_string(lines + 1) + ":";
    EXPECT_NE(r.err.find("forkctl: reload: " + where), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("max-connections"), std::string::npos) << r.err;
    EXPECT_EQ(status_of(d)["limits"]["max_connections"], 20);
    EXPECT_TRUE(still_serving(d));
    EXPECT_TRUE(d.wait_log("command=reload result=failed"));

    std::string fixed = good;
    fixed.replace(fixed.find("max-connections = 20"), 20, "max-connections = 12");
    write_file(d.config_path(), fixed);
    auto ok = forkctl(d, {"reload"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(status_of(d)["limits"]["max_connections"], 12);
}

// ---- stop ----------------------------------------------------------------------------------------

TEST(Forkctl, StopReturnsOnceTheDaemonHasExited) {
    Daemon d;
    const pid_t pid = d.pid();
    auto r = forkctl(d, {"stop"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(process_alive(pid)) << "forkctl stop returned while forkd still ran";
    EXPECT_NE(::access(d.control_socket().c_str(), F_OK), 0) << "control socket left behind";
    EXPECT_EQ(d.wait_exit(5s), 0);

    auto after = forkctl(d, {"status"});
    EXPECT_EQ(after.exit_code, 3);
    EXPECT_EQ(after.err, "forkctl: cannot reach forkd at " + d.control_socket() +
                             ": No such file or directory (is it running?)\n");
}

TEST(Forkctl, StopWaitsForConnectionsToFinish) {
    DaemonOptions options;
    options.config_lines = {"listen = 127.0.0.1:0", "shutdown-timeout = 1"};
    Daemon d(options);
    UniqueFd a = served_connection(d);
    auto r = forkctl(d, {"stop", "--timeout", "15"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(process_alive(d.pid()));
    EXPECT_TRUE(wait_closed(a.get(), 1s)) << "the handler outlived the stop";
}

TEST(Forkctl, StopTimeoutExitsOneAndTheDaemonStillStops) {
    DaemonOptions options;
    options.config_lines = {"listen = 127.0.0.1:0", "shutdown-timeout = 3"};
    Daemon d(options);
    UniqueFd a = served_connection(d);
    auto r = forkctl(d, {"stop", "--timeout", "0.3"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("forkctl: stop: forkd has not exited after 0.3 s"), std::string::npos) << r.err;
    EXPECT_TRUE(d.wait_exit(15s).has_value());
}

// ---- kill ----------------------------------------------------------------------------------------

TEST(Forkctl, KillEndsExactlyThatConnection) {
    Daemon d;
    UniqueFd a = served_connection(d), b = served_connection(d), c = served_connection(d);
    const std::string b_peer = "127.0.0.1:" + std::to_string(local_port(b.get()));
    json rows = json_of(forkctl(d, {"--json", "list"}));
    std::uint64_t id = 0;
    pid_t pid = 0;
    for (const auto& row : rows)
        if (row["peer"] == b_peer) {
            id = row["id"].get<std::uint64_t>();
            pid = row["pid"].get<pid_t>();
        }
    ASSERT_NE(id, 0u) << rows.dump();

    auto r = forkctl(d, {"kill", std::to_string(id)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(wait_closed(b.get(), 5s));
    EXPECT_TRUE(eventually([&] { return !process_alive(pid); }));
    EXPECT_TRUE(echo_roundtrip(a.get(), "a lives"));
    EXPECT_TRUE(echo_roundtrip(c.get(), "c lives"));
    ASSERT_TRUE(eventually([&] { return active_of(d) == 2; }));
    EXPECT_TRUE(d.wait_log("command=kill result=ok request=\"id=" + std::to_string(id) + "\""));

    auto missing = forkctl(d, {"kill", "999999"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("999999"), std::string::npos) << missing.err;
}

// ---- exit codes and messages ----------------------------------------------------------------------

TEST(Forkctl, UsageErrorsExitTwo) {
    Daemon d;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {}, {"bogus"}, {"s"}, {"set"}, {"set", "colour", "red"}, {"kill"}, {"kill", "x"},
             {"status", "extra"}, {"--bogus", "status"}, {"drain", "--timeout", "1"}, {"--timeout", "0", "status"}}) {
        auto r = forkctl(d, args);
        EXPECT_EQ(r.exit_code, 2) << (args.empty() ? "(none)" : args[0]) << ": " << r.err;
        EXPECT_EQ(r.err.rfind("forkctl: ", 0), 0u) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_TRUE(r.out.empty());
    }
    EXPECT_EQ(d.count_log("event=control-audit"), 0u) << "a usage error reached the daemon";
    auto help = run({FORKCTL_BINARY, "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("Usage: forkctl"), std::string::npos);
}

TEST(Forkctl, UnreachableExitsThree) {
    TempDir dir;
    auto r = run({FORKCTL_BINARY, "-s", dir.file("none.sock"), "status"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.err, "forkctl: cannot reach forkd at " + dir.file("none.sock") +
                         ": No such file or directory (is it running?)\n");

    // A socket file nobody listens on: connection refused.
    {
        UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::string path = dir.file("stale.sock");
        std::copy(path.begin(), path.end(), address.sun_path);
        ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    }
    r = run({FORKCTL_BINARY, "-s", dir.file("stale.sock"), "stop"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("Connection refused"), std::string::npos) << r.err;

    // Something listens but never answers: the global --timeout.
    UniqueFd silent(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::string path = dir.file("silent.sock");
    std::copy(path.begin(), path.end(), address.sun_path);
    ASSERT_EQ(::bind(silent.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ASSERT_EQ(::listen(silent.get(), 4), 0);
    r = run({FORKCTL_BINARY, "-s", path, "--timeout", "0.3", "status"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("did not answer"), std::string::npos) << r.err;

    // -i NAME looks in the run-time directory.
    r = run({FORKCTL_BINARY, "-i", "no-such-instance-xyz", "status"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("no-such-instance-xyz.sock"), std::string::npos) << r.err;
}

TEST(Forkctl, JsonPrintsExactlyOneDocumentForEveryCommand) {
    Daemon d;
    UniqueFd a = served_connection(d);
    json rows = json_of(forkctl(d, {"--json", "list"}));
    ASSERT_EQ(rows.size(), 1u);
    const std::string id = std::to_string(rows[0]["id"].get<std::uint64_t>());
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--json", "set", "idle-timeout", "9"}, {"--json", "drain"}, {"--json", "resume"},
             {"--json", "reload"}, {"--json", "kill", id}}) {
        auto r = forkctl(d, args);
        EXPECT_EQ(r.exit_code, 0) << args[1] << ": " << r.err;
        EXPECT_EQ(json_of(r)["ok"], true) << args[1];
    }
    auto stop = forkctl(d, {"--json", "stop"});
    EXPECT_EQ(stop.exit_code, 0) << stop.err;
    EXPECT_EQ(json_of(stop)["ok"], true);
}

// ---- authorisation -------------------------------------------------------------------------------

TEST(Forkctl, UnprivilegedPeerMayReadButNotSteer) {
    if (!can_switch_users()) GTEST_SKIP() << "needs root and setpriv to run forkctl as nobody";
    Daemon d;
    open_dir_to_others(d);
    // Let nobody connect at all, so that the per-request check is what stops it.
    ASSERT_EQ(::chmod(d.control_socket().c_str(), 0666), 0);

    auto status = forkctl_as(d, nobody, nobody, {}, {"--json", "status"});
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_EQ(json_of(status)["pid"], d.pid());
    EXPECT_EQ(forkctl_as(d, nobody, nobody, {}, {"list"}).exit_code, 0);

    for (const auto& args : std::vector<std::vector<std::string>>{
             {"set", "max-connections", "1"}, {"drain"}, {"resume"}, {"reload"}, {"kill", "1"}, {"stop"}}) {
        auto r = forkctl_as(d, nobody, nobody, {}, args);
        EXPECT_EQ(r.exit_code, 4) << args[0] << ": " << r.err;
        EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
    }
    EXPECT_TRUE(d.wait_log("uid=65534"));
    EXPECT_GE(d.count_log("result=denied"), 6u) << d.log();
    json after = status_of(d);
    EXPECT_EQ(after["state"], "running");
    EXPECT_EQ(after["limits"]["max_connections"], 256);
    EXPECT_TRUE(d.running());
}

TEST(Forkctl, ControlGroupMembersMaySteer) {
    if (!can_switch_users()) GTEST_SKIP() << "needs root and setpriv to run forkctl as nobody";
    const struct group* users = ::getgrnam("users");
    if (!users) GTEST_SKIP() << "no group 'users' on this system";
    const gid_t gid = users->gr_gid;
    DaemonOptions options;
    options.config_lines = {"listen = 127.0.0.1:0", "control-group = users"};
    Daemon d(options);
    open_dir_to_others(d);
    struct stat st {};
    ASSERT_EQ(::stat(d.control_socket().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    EXPECT_EQ(st.st_gid, gid);

    // A supplementary member of the control group may drain and resume.
    auto drain = forkctl_as(d, nobody, nobody, {gid}, {"drain"});
    EXPECT_EQ(drain.exit_code, 0) << drain.err;
    EXPECT_EQ(status_of(d)["state"], "draining");
    EXPECT_EQ(forkctl_as(d, nobody, gid, {}, {"resume"}).exit_code, 0) << "primary group counts too";
    EXPECT_EQ(status_of(d)["state"], "running");

    // Outside the group, the socket's mode keeps nobody out before any request; status still
    // answers, through the read-only socket.
    auto outsider = forkctl_as(d, nobody, nobody, {}, {"drain"});
    EXPECT_EQ(outsider.exit_code, 4) << outsider.err;
    EXPECT_NE(outsider.err.find("Permission denied"), std::string::npos) << outsider.err;
    EXPECT_EQ(forkctl_as(d, nobody, nobody, {}, {"status"}).exit_code, 0);
}

std::string read_only_socket(const Daemon& d) { return d.dir().file("forkd.ro.sock"); }

TEST(Forkctl, AMonitoringUserReadsThroughTheReadOnlySocketButCannotSteer) {
    if (!can_switch_users()) GTEST_SKIP() << "needs root and setpriv to run forkctl as nobody";
    Daemon d;
    open_dir_to_others(d);
    struct stat st {};
    ASSERT_EQ(::lstat(read_only_socket(d).c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0666u);
    ASSERT_EQ(::stat(d.control_socket().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0660u) << "the control socket itself stays closed";

    // forkctl finds the read-only door by itself when the control socket refuses it.
    auto status = forkctl_as(d, nobody, nobody, {}, {"--json", "status"});
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_EQ(json_of(status)["pid"], d.pid());
    EXPECT_EQ(forkctl_as(d, nobody, nobody, {}, {"list"}).exit_code, 0);
    for (const auto& args : std::vector<std::vector<std::string>>{{"stop"}, {"drain"}, {"set", "max-connections", "1"}}) {
        auto r = forkctl_as(d, nobody, nobody, {}, args);
        EXPECT_EQ(r.exit_code, 4) << args[0] << ": " << r.err;
        EXPECT_NE(r.err.find("ermission denied"), std::string::npos) << r.err;
    }
    // Through the read-only socket even root may only read.
    auto root_stop = run({FORKCTL_BINARY, "-s", read_only_socket(d), "stop"});
    EXPECT_EQ(root_stop.exit_code, 4) << root_stop.err;
    EXPECT_NE(root_stop.err.find("read-only control socket"), std::string::npos) << root_stop.err;
    EXPECT_TRUE(d.running());
    EXPECT_EQ(status_of(d)["state"], "running");
    // Both sockets go with a clean stop.
    d.signal(SIGTERM);
    ASSERT_TRUE(d.wait_exit().has_value());
    EXPECT_FALSE(std::filesystem::exists(read_only_socket(d)));
}

// A child as UID holding COUNT connections to PATH; it says on its pipe whether the last one was
// turned away, and holds them until its other pipe closes.
class ConnectionHolder {
public:
    ConnectionHolder(uid_t uid, const std::string& path, int count) {
        int report[2], release[2];
        if (::pipe(report) != 0 || ::pipe(release) != 0) throw std::runtime_error("pipe");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(report[0]);
            ::close(release[1]);
            auto say = [&](const std::string& text) { (void)!::write(report[1], text.data(), text.size()); };
            if (::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 || ::setresuid(uid, uid, uid) != 0) {
                say("cannot become uid " + std::to_string(uid) + "\n");
                ::_exit(1);
            }
            std::vector<UniqueFd> held;
            for (int i = 0; i < count; ++i) {
                held.push_back(connect_unix(path));
                if (!held.back()) {
                    say("cannot connect to " + path + ": " + std::strerror(errno) + "\n");
                    ::_exit(1);
                }
            }
            const std::string last = read_until_eof(held.back().get(), 3s);
            say(last.empty() ? "admitted\n" : last);
            ::close(report[1]);
            char byte;
            (void)!::read(release[0], &byte, 1);
            ::_exit(0);
        }
        ::close(report[1]);
        ::close(release[0]);
        report_.reset(report[0]);
        release_.reset(release[1]);
    }
    ~ConnectionHolder() {
        release_.reset();
        if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
    }
    // What the child said (one line), or "" if it said nothing within 10 s.
    std::string last_reply() {
        std::string line;
        pollfd pfd{report_.get(), POLLIN, 0};
        char c;
        while (line.find('\n') == std::string::npos && ::poll(&pfd, 1, 10000) == 1 && ::read(report_.get(), &c, 1) == 1)
            line += c;
        return line;
    }
    void let_go() {
        release_.reset();
        if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
    UniqueFd report_, release_;
};

TEST(ForkctlSocket, OneUserCannotCrowdOutTheAdmin) {
    if (!can_switch_users()) GTEST_SKIP() << "needs root to connect as nobody";
    Daemon d;
    open_dir_to_others(d);
    // nobody holds 8 idle connections (its bound) and a 9th is turned away at once.
    ConnectionHolder flood(nobody, read_only_socket(d), 9);
    const std::string refused = flood.last_reply();
    EXPECT_NE(refused.find("too many control connections from uid 65534 (limit 8)"), std::string::npos) << refused;
    // The admin still gets through, on either socket.
    auto admin = forkctl(d, {"status"});
    EXPECT_EQ(admin.exit_code, 0) << admin.err;
    auto admin_ro = run({FORKCTL_BINARY, "-s", read_only_socket(d), "status"});
    EXPECT_EQ(admin_ro.exit_code, 0) << admin_ro.err;
    // More of nobody's attempts are refused without a log line each.
    auto again = forkctl_as(d, nobody, nobody, {}, {"status"});
    EXPECT_EQ(again.exit_code, 1) << again.err;
    EXPECT_NE(again.err.find("too many control connections from uid 65534"), std::string::npos) << again.err;
    EXPECT_EQ(d.count_log("event=control-refused reason=too-many-from-uid uid=65534"), 1u) << d.log();
    flood.let_go();
    EXPECT_TRUE(d.wait_log("event=control-refusals-ended reason=too-many-from-uid uid=65534 refused=2")) << d.log();
    EXPECT_TRUE(eventually([&] { return forkctl_as(d, nobody, nobody, {}, {"status"}).exit_code == 0; }));
}

// ---- a robust control socket ------------------------------------------------------------------------

TEST(ForkctlSocket, GarbageAndOversizeRequestsGetErrorsAndChangeNothing) {
    Daemon d;
    auto garbage = reply_of(raw_request(d, "\x7f\x01 this is not json\n"));
    EXPECT_FALSE(garbage.ok);
    EXPECT_EQ(garbage.code, forkd::control::ErrorCode::bad_request);

    auto unknown = reply_of(raw_request(d, "{\"version\":1,\"command\":\"selfdestruct\"}\n"));
    EXPECT_EQ(unknown.code, forkd::control::ErrorCode::unknown_command);

    auto future = reply_of(raw_request(d, "{\"version\":2,\"command\":\"status\"}\n"));
    EXPECT_NE(future.error.find("unsupported protocol version 2"), std::string::npos) << future.error;

    UniqueFd big = connect_unix(d.control_socket());
    ASSERT_TRUE(big.valid());
    std::thread writer([&] { send_all(big.get(), std::string(1 << 20, '{')); });
    std::string reply = read_until_eof(big.get(), 5s);
    writer.join();
    EXPECT_NE(reply_of(reply).error.find("too large"), std::string::npos) << reply.substr(0, 200);

    // A script speaking the protocol directly.
    auto status = reply_of(raw_request(d, "{\"version\":1,\"command\":\"status\"}\n"));
    ASSERT_TRUE(status.ok);
    EXPECT_EQ(status.result["pid"], d.pid());
    EXPECT_TRUE(still_serving(d));
    EXPECT_TRUE(d.running());
}

TEST(ForkctlSocket, SlowHalfOpenClientsTimeOutAndDoNotStopService) {
    Daemon d;
    std::vector<UniqueFd> slow;
    for (int i = 0; i < 8; ++i) {
        slow.push_back(connect_unix(d.control_socket()));
        ASSERT_TRUE(slow.back().valid());
        send_all(slow.back().get(), "{\"version\":1,");
    }
    EXPECT_TRUE(still_serving(d));
    auto r = forkctl(d, {"--json", "status"});
    EXPECT_EQ(r.exit_code, 0) << "slow clients blocked a prompt one: " << r.err;
    for (auto& fd : slow) {
        std::string reply = read_until_eof(fd.get(), 10s);
        EXPECT_NE(reply.find("timed out"), std::string::npos) << reply;
    }
    EXPECT_TRUE(still_serving(d));
}

TEST(ForkctlSocket, TooManyControlClientsAreTurnedAwayThenServedAgain) {
    Daemon d;
    std::vector<UniqueFd> idle;
    for (int i = 0; i < 40; ++i) {
        idle.push_back(connect_unix(d.control_socket()));
        ASSERT_TRUE(idle.back().valid());
    }
    // Beyond the limit (32), forkd answers and hangs up at once; the service is untouched.
    auto r = forkctl(d, {"status"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("too many control connections"), std::string::npos) << r.err;
    EXPECT_TRUE(still_serving(d));
    idle.clear();
    EXPECT_TRUE(eventually([&] { return forkctl(d, {"status"}).exit_code == 0; }));
}

// Out of descriptors, the control socket stops accepting for a while instead of spinning on
// EMFILE, and serves the clients that waited in its backlog once descriptors are back.
TEST(ForkctlSocket, DescriptorExhaustionPausesAcceptingWithoutSpinning) {
    Daemon d;
    ASSERT_EQ(forkctl(d, {"status"}).exit_code, 0);  // whatever the loop creates lazily exists now
    rlimit original{};
    ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, nullptr, &original), 0);
    rlimit tight = original;
    tight.rlim_cur = static_cast<rlim_t>(proc_lowest_free_fd(d.pid()));
    ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, &tight, nullptr), 0);

    std::vector<UniqueFd> waiting;
    for (int i = 0; i < 5; ++i) {
        waiting.push_back(connect_unix(d.control_socket()));
        ASSERT_TRUE(waiting.back().valid());
        ASSERT_TRUE(send_all(waiting.back().get(), "{\"version\":1,\"command\":\"status\"}\n"));
    }
    ASSERT_TRUE(d.wait_log("event=control-accept-paused", 5s)) << d.log();
    const auto before = proc_cpu_ticks(d.pid());
    std::this_thread::sleep_for(2s);
    const auto used = proc_cpu_ticks(d.pid()) - before;
    EXPECT_LT(used, 40u) << "forkd used " << used << " ticks in 2 s at EMFILE: spinning?";

    ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, &original, nullptr), 0);
    for (auto& fd : waiting) {
        std::string reply = read_until_eof(fd.get(), 10s);
        EXPECT_TRUE(!reply.empty() && reply_of(reply).ok) << reply;
    }
    EXPECT_TRUE(still_serving(d));
}
