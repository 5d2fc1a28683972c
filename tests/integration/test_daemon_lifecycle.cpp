// SPDX-License-Identifier: MIT
// Start-up and stop: readiness, pidfile, daemon mode, exit codes, graceful and abrupt ends.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>

using namespace forkd::test;
using forkd::UniqueFd;
namespace fs = std::filesystem;

namespace {

std::string readlink_str(const std::string& path) {
    std::error_code ec;
    auto target = fs::read_symlink(path, ec);
    if (!ec) return target.string();
    std::string error = "<";
    error += ec.message();
    return error + ">";
}

// A pid that surely belongs to no process now: a child that has exited and been reaped.
pid_t dead_pid() {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    return pid;
}

// The 1-based line of the config file that contains needle.
int config_line_of(const Daemon& d, const std::string& needle) {
    std::istringstream in(read_file(d.config_path()));
    std::string line;
    for (int n = 1; std::getline(in, line); ++n)
        if (line.find(needle) != std::string::npos) return n;
    return -1;
}

std::vector<std::string> forkd_argv(const Daemon& d, bool foreground = true) {
    std::vector<std::string> argv = {FORKD_BINARY, "-c", d.config_path()};
    if (foreground) argv.push_back("-f");
    return argv;
}

void kill_all(const std::vector<pid_t>& pids) {
    for (pid_t p : pids)
        if (process_alive(p)) ::kill(p, SIGKILL);
}

} // namespace

// ---------------------------------------------------------------- readiness and stop

TEST(Lifecycle, NotifiesReadyAndStoppingAndExitsZero) {
    Daemon d;
    EXPECT_GE(d.count_notifications("READY=1"), 1u);
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid()) << "READY=1 was sent before the listener serves";
    EXPECT_TRUE(echo_roundtrip(fd.get(), "ready"));
    fd.reset();

    d.signal(SIGTERM);
    auto status = d.wait_exit();
    ASSERT_TRUE(status.has_value()) << "forkd did not stop on SIGTERM:\n" << d.log();
    EXPECT_EQ(*status, 0) << d.log();
    EXPECT_GE(d.count_notifications("STOPPING=1"), 1u);
    EXPECT_NE(d.log().find("event=stopping"), std::string::npos) << d.log();
    EXPECT_NE(d.log().find("event=stopped"), std::string::npos) << d.log();
    EXPECT_FALSE(fs::exists(d.pidfile())) << "pidfile left behind";
    EXPECT_FALSE(fs::exists(d.control_socket())) << "control socket left behind";
}

TEST(Lifecycle, SigintIsAGracefulStopToo) {
    Daemon d;
    d.signal(SIGINT);
    auto status = d.wait_exit();
    ASSERT_TRUE(status.has_value()) << d.log();
    EXPECT_EQ(*status, 0) << d.log();
}

TEST(Lifecycle, GracefulStopLetsAnInFlightConnectionFinish) {
    Daemon d(config({"shutdown-timeout = 60"}));
    const auto port = d.port();
    auto fd = connect_tcp(port);
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(echo_roundtrip(fd.get(), "before"));
    ASSERT_TRUE(fs::exists(d.control_socket())) << "no control socket while running";

    d.signal(SIGTERM);
    ASSERT_TRUE(d.wait_log("event=stopping")) << d.log();
    EXPECT_TRUE(d.wait_notification("STOPPING=1"));
    // The connection in flight carries on...
    EXPECT_TRUE(echo_roundtrip(fd.get(), "during the stop"));
    EXPECT_TRUE(d.running());
    // ...while nobody new is served: the listening socket is gone, the spawner's copy too.
    if (auto late = connect_tcp(port); late.valid()) {
        send_all(late.get(), "late");
        EXPECT_EQ(read_n(late.get(), 4, 1s), "") << "a new connection was served while stopping";
    }
    EXPECT_TRUE(eventually([&] { return !connect_tcp(port).valid(); }, 3s))
        << "the listening socket outlived the stop";
    EXPECT_FALSE(d.wait_exit(1s).has_value()) << "exited with a connection still open";

    fd.reset();
    auto status = d.wait_exit();
    ASSERT_TRUE(status.has_value()) << "did not exit after the last connection closed:\n" << d.log();
    EXPECT_EQ(*status, 0);
    EXPECT_FALSE(fs::exists(d.pidfile())) << "pidfile left behind";
    EXPECT_FALSE(fs::exists(d.control_socket())) << "control socket left behind";
}

TEST(Lifecycle, ShutdownTimeoutEndsALingeringHandler) {
    Daemon d(config({"shutdown-timeout = 1"}));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(echo_roundtrip(fd.get(), "x"));
    auto handlers = d.children();
    ASSERT_EQ(handlers.size(), 1u);

    d.signal(SIGTERM);
    EXPECT_TRUE(wait_closed(fd.get(), 10s)) << "lingering connection never closed";
    auto status = d.wait_exit(10s);
    ASSERT_TRUE(status.has_value()) << d.log();
    EXPECT_EQ(*status, 0) << d.log();
    EXPECT_FALSE(process_alive(handlers[0])) << "handler outlived the daemon";
    kill_all(handlers);
}

TEST(Lifecycle, SecondSigtermStopsAtOnce) {
    Daemon d(config({"shutdown-timeout = 120"}));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(echo_roundtrip(fd.get(), "x"));
    auto handlers = d.children();
    d.signal(SIGTERM);
    ASSERT_TRUE(d.wait_log("event=stopping")) << d.log();
    d.signal(SIGTERM);
    auto status = d.wait_exit(15s);
    ASSERT_TRUE(status.has_value()) << "second SIGTERM did not stop forkd:\n" << d.log();
    EXPECT_TRUE(wait_closed(fd.get(), 3s));
    EXPECT_TRUE(eventually([&] {
        for (pid_t p : handlers)
            if (process_alive(p)) return false;
        return true;
    }, 3s)) << "handler outlived an immediate stop";
    kill_all(handlers);
}

TEST(Lifecycle, MasterSigkillLeavesNoHandlerAndNoIpcObject) {
    const auto ipc_before = ipc_objects();
    std::vector<pid_t> handlers;
    std::vector<UniqueFd> clients;
    {
        Daemon d;
        for (int i = 0; i < 3; ++i) {
            clients.push_back(connect_tcp(d.port()));
            ASSERT_TRUE(clients.back().valid());
            ASSERT_TRUE(echo_roundtrip(clients.back().get(), "x"));
        }
        handlers = d.children();
        ASSERT_EQ(handlers.size(), 3u);
        // The built-in handlers' parent goes too (it dies with the master, they die with it).
        const pid_t spawner = d.spawner_pid();
        ASSERT_GT(spawner, 0);
        handlers.push_back(spawner);

        d.signal(SIGKILL);
        ASSERT_EQ(d.wait_exit(5s), 128 + SIGKILL);
        const bool all_gone = eventually([&] {
            for (pid_t p : handlers)
                if (process_alive(p)) return false;
            return true;
        }, 1200ms);  // the contract's second, plus scheduling slack
        EXPECT_TRUE(all_gone) << "a handler outlived the master by more than a second";
        for (auto& c : clients) EXPECT_TRUE(wait_closed(c.get(), 3s));
    }
    kill_all(handlers);
    const auto added = ipc_objects_added_since(ipc_before);
    EXPECT_TRUE(added.empty()) << "IPC objects outlived the daemon: " << ::testing::PrintToString(added);
}

// Built-in handlers cannot be served without forkd-spawner: forkd refuses to start (exit 3, a
// start-up failure) and says which binary it missed.
TEST(Lifecycle, MissingSpawnerFailsTheStartNamingIt) {
    if (::access(FORKD_INSTALLED_SPAWNER, X_OK) == 0)
        GTEST_SKIP() << FORKD_INSTALLED_SPAWNER << " is installed: a lone forkd would find it";
    TempDir bin;
    const std::string lone = bin.file("forkd");  // a forkd with no forkd-spawner beside it
    DaemonOptions o = config({});
    o.expect_ready = false;
    o.launch_prefix = {"/bin/sh", "-c", "cp \"$0\" " + lone + " && exec " + lone + " \"$@\""};
    Daemon d(o);
    EXPECT_EQ(d.wait_exit(10s), 3) << d.log();
    EXPECT_NE(d.log().find(FORKD_INSTALLED_SPAWNER), std::string::npos) << d.log();
    EXPECT_FALSE(std::filesystem::exists(d.pidfile())) << "a failed start left its pidfile";
}

// ---------------------------------------------------------------- pidfile

TEST(Pidfile, HoldsThePidAndANewline) {
    Daemon d;
    EXPECT_EQ(read_file(d.pidfile()), std::to_string(d.pid()) + "\n");
}

TEST(Pidfile, SecondInstanceExitsTwoNamingTheRunningPid) {
    Daemon d;
    auto r = run(forkd_argv(d));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("already running (pid " + std::to_string(d.pid()) + ")"), std::string::npos)
        << "stderr: " << r.err;
    // The first one is untouched.
    EXPECT_EQ(read_file(d.pidfile()), std::to_string(d.pid()) + "\n");
    EXPECT_TRUE(fs::exists(d.control_socket())) << "the second instance removed the control socket";
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "first still serves"));
}

TEST(Pidfile, SecondInstanceInDaemonModeExitsTwoToo) {
    Daemon d;
    auto r = run(forkd_argv(d, false));
    if (r.exit_code == 0) {
        // It wrongly daemonized: stop the intruder, whose pid is now in the pidfile.
        const pid_t intruder = static_cast<pid_t>(std::atol(read_file(d.pidfile()).c_str()));
        if (intruder > 0 && intruder != d.pid()) ::kill(intruder, SIGKILL);
    }
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("already running (pid " + std::to_string(d.pid()) + ")"), std::string::npos)
        << "stderr: " << r.err;
    EXPECT_TRUE(d.running());
}

TEST(Pidfile, StalePidfileOfADeadProcessDoesNotBlock) {
    DaemonOptions o;
    o.before_start = [](const TempDir& dir) {
        write_file(dir.file("forkd.pid"), std::to_string(dead_pid()) + "\n");
    };
    Daemon d(o);
    EXPECT_EQ(read_file(d.pidfile()), std::to_string(d.pid()) + "\n");
}

TEST(Pidfile, UnlockedPidfileNamingALiveProcessDoesNotBlock) {
    // After a crash the old pid may belong to someone else now: only the lock counts.
    DaemonOptions o;
    o.before_start = [](const TempDir& dir) {
        write_file(dir.file("forkd.pid"), std::to_string(::getpid()) + "\n");
    };
    Daemon d(o);
    EXPECT_EQ(read_file(d.pidfile()), std::to_string(d.pid()) + "\n");
}

TEST(Pidfile, PidfileOfASigkilledDaemonDoesNotBlock) {
    DaemonOptions o;
    Daemon first(o);
    const std::string conf = read_file(first.config_path());
    first.signal(SIGKILL);
    ASSERT_TRUE(first.wait_exit().has_value());
    ASSERT_TRUE(fs::exists(first.pidfile())) << "precondition: SIGKILL leaves the pidfile";

    // Same pidfile and control socket paths (the command line wins over the second's file).
    DaemonOptions again;
    again.extra_args = {"--pidfile", first.pidfile(), "--control-socket", first.control_socket()};
    Daemon second(again);
    EXPECT_EQ(read_file(first.pidfile()), std::to_string(second.pid()) + "\n");
    EXPECT_TRUE(fs::exists(first.control_socket()));
}

// ---------------------------------------------------------------- daemon mode

TEST(DaemonMode, LauncherReturnsOnlyOnceServing) {
    DaemonOptions o;
    o.foreground = false;
    const auto port = free_tcp_port();
    o.config_lines = {"listen = 127.0.0.1:" + std::to_string(port)};
    Daemon d(o);
    ASSERT_EQ(d.launcher_exit_code(), 0) << d.launcher_stderr();
    // Straight after the launcher returns: listener bound, pidfile locked, control socket open.
    auto fd = connect_tcp(port);
    ASSERT_TRUE(fd.valid()) << "not serving when the launcher returned";
    EXPECT_TRUE(echo_roundtrip(fd.get(), "daemonized"));
    EXPECT_TRUE(fs::exists(d.control_socket()));
    EXPECT_EQ(read_file(d.pidfile()), std::to_string(d.pid()) + "\n");
    EXPECT_EQ(d.launcher_stderr(), "");
}

TEST(DaemonMode, DetachedWithRootCwdAndNullStdio) {
    DaemonOptions o;
    o.foreground = false;
    o.config_lines = {"listen = 127.0.0.1:" + std::to_string(free_tcp_port())};
    Daemon d(o);
    ASSERT_EQ(d.launcher_exit_code(), 0) << d.launcher_stderr();
    const pid_t pid = d.pid();
    const std::string proc = "/proc/" + std::to_string(pid);
    EXPECT_EQ(readlink_str(proc + "/cwd"), "/");
    for (int fd = 0; fd <= 2; ++fd)
        EXPECT_EQ(readlink_str(proc + "/fd/" + std::to_string(fd)), "/dev/null") << "fd " << fd;
    const pid_t sid = ::getsid(pid);
    EXPECT_NE(sid, pid) << "the daemon is a session leader (could reacquire a terminal)";
    EXPECT_NE(sid, ::getsid(0)) << "the daemon stayed in the launcher's session";
    EXPECT_NE(proc_ppid(pid), ::getpid());
}

TEST(DaemonMode, StopsOnSigtermAndCleansUp) {
    DaemonOptions o;
    o.foreground = false;
    o.config_lines = {"listen = 127.0.0.1:" + std::to_string(free_tcp_port())};
    Daemon d(o);
    ASSERT_EQ(d.launcher_exit_code(), 0) << d.launcher_stderr();
    d.signal(SIGTERM);
    ASSERT_TRUE(d.wait_exit().has_value()) << "daemon did not stop";
    EXPECT_TRUE(eventually([&] { return !fs::exists(d.pidfile()); }, 2s)) << "pidfile left behind";
    EXPECT_FALSE(fs::exists(d.control_socket())) << "control socket left behind";
}

// ---------------------------------------------------------------- start-up failures

TEST(Startup, BindFailureExitsThreeNamingTheAddress) {
    auto holder = listen_tcp(0);
    ASSERT_TRUE(holder.valid());
    const std::string address = "127.0.0.1:" + std::to_string(local_port(holder.get()));
    DaemonOptions o;
    o.config_lines = {"listen = " + address};
    o.expect_ready = false;
    Daemon d(o);
    auto status = d.wait_exit();
    ASSERT_TRUE(status.has_value()) << "forkd kept running over a busy port:\n" << d.log();
    EXPECT_EQ(*status, 3) << d.log();
    EXPECT_NE(d.log().find(address), std::string::npos) << "error should name " << address << ":\n"
                                                       << d.log();
    EXPECT_EQ(d.count_notifications("READY=1"), 0u);
    EXPECT_FALSE(fs::exists(d.pidfile())) << "pidfile left by a failed start";
}

TEST(Startup, BindFailureInDaemonModeReachesTheLauncher) {
    auto holder = listen_tcp(0);
    ASSERT_TRUE(holder.valid());
    const std::string address = "127.0.0.1:" + std::to_string(local_port(holder.get()));
    DaemonOptions o;
    o.foreground = false;
    o.config_lines = {"listen = " + address};
    o.expect_ready = false;
    Daemon d(o);
    EXPECT_EQ(d.launcher_exit_code(), 3) << d.launcher_stderr();
    EXPECT_NE(d.launcher_stderr().find(address), std::string::npos)
        << "launcher stderr should name " << address << ": " << d.launcher_stderr();
    EXPECT_FALSE(fs::exists(d.pidfile())) << "pidfile left by a failed start";
}

TEST(Startup, BadValueExitsOneWithFileLineAndOption) {
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:0", "max-connections = lots"};
    o.expect_ready = false;
    Daemon d(o);
    auto status = d.wait_exit();
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 1) << d.log();
    const std::string where = d.config_path() + ":" + std::to_string(config_line_of(d, "lots"));
    EXPECT_NE(d.log().find(where), std::string::npos) << "expected '" << where << "' in:\n" << d.log();
    EXPECT_NE(d.log().find("max-connections"), std::string::npos) << d.log();
    EXPECT_FALSE(fs::exists(d.pidfile())) << "a config error must not touch anything";
    EXPECT_FALSE(fs::exists(d.control_socket())) << "a config error must not touch anything";
}

TEST(Startup, UnknownOptionExitsOneWithFileLine) {
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:0", "frobnicate = yes"};
    o.expect_ready = false;
    Daemon d(o);
    auto status = d.wait_exit();
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 1) << d.log();
    const std::string where = d.config_path() + ":" + std::to_string(config_line_of(d, "frobnicate"));
    EXPECT_NE(d.log().find(where), std::string::npos) << "expected '" << where << "' in:\n" << d.log();
    EXPECT_NE(d.log().find("frobnicate"), std::string::npos) << d.log();
}

TEST(Startup, MissingListenExitsOne) {
    DaemonOptions o;
    o.config_lines = {};
    o.expect_ready = false;
    Daemon d(o);
    auto status = d.wait_exit();
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 1) << d.log();
    EXPECT_NE(d.log().find("listen"), std::string::npos) << d.log();
}

TEST(Startup, ConfigErrorInDaemonModeReachesTheLauncher) {
    DaemonOptions o;
    o.foreground = false;
    o.config_lines = {"listen = 127.0.0.1:0", "overload = sometimes"};
    o.expect_ready = false;
    Daemon d(o);
    EXPECT_EQ(d.launcher_exit_code(), 1) << d.launcher_stderr();
    EXPECT_NE(d.launcher_stderr().find("overload"), std::string::npos) << d.launcher_stderr();
    EXPECT_NE(d.launcher_stderr().find(d.config_path() + ":"), std::string::npos)
        << d.launcher_stderr();
}

TEST(Startup, CheckConfigValidatesAndPrints) {
    TempDir dir;
    const std::string good = dir.file("good.conf");
    write_file(good, "listen = 127.0.0.1:7007\nhandler = daytime\nmax-connections = 9\n");
    auto r = run({FORKD_BINARY, "-t", "-c", good});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("127.0.0.1:7007"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("daytime"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("9"), std::string::npos) << r.out;

    const std::string bad = dir.file("bad.conf");
    write_file(bad, "listen = 127.0.0.1:7007\nidle-timeout = -3\n");
    r = run({FORKD_BINARY, "-t", "-c", bad});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE((r.err + r.out).find(bad + ":2"), std::string::npos) << r.err;
}

TEST(Startup, CommandLineWinsOverTheFile) {
    DaemonOptions o;
    o.config_lines = {"listen = 127.0.0.1:0", "handler = discard"};
    o.extra_args = {"--handler", "echo"};
    Daemon d(o);
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(echo_roundtrip(fd.get(), "echo wins"));
}

// ---------------------------------------------------------------- notify extras, log format

TEST(Notify, WatchdogPingsWhenAsked) {
    DaemonOptions o;
    o.env = {{"WATCHDOG_USEC", "400000"}};
    Daemon d(o);
    EXPECT_TRUE(d.wait_notification("WATCHDOG=1", 3s)) << "no WATCHDOG=1 with WATCHDOG_USEC=400000";
}

TEST(Notify, StatusFollowsTheLoad) {
    Daemon d;
    const auto before = d.count_notifications("STATUS=");
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(echo_roundtrip(fd.get(), "x"));
    EXPECT_TRUE(eventually([&] { return d.count_notifications("STATUS=") > before; }, 5s))
        << "no STATUS= update after a connection started";
}

TEST(Logs, JournalStreamAddsPriorityPrefixes) {
    DaemonOptions o;
    // JOURNAL_STREAM naming the file stderr really is (the harness's log), as systemd sets it;
    // with no journald socket here to take structured entries, the lines carry <N> prefixes.
    o.launch_prefix = {"/bin/sh", "-c", "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec \"$@\"", "sh"};
    Daemon d(o);
    const auto lines = d.log_lines("event=listening");
    ASSERT_FALSE(lines.empty()) << d.log();
    EXPECT_TRUE(lines[0].size() > 3 && lines[0][0] == '<' && std::isdigit(lines[0][1]) &&
                lines[0][2] == '>')
        << "expected a <N> prefix: " << lines[0];
}

TEST(Logs, JournalStreamOfAnotherFileAddsNoPrefixes) {
    DaemonOptions o;
    o.env = {{"JOURNAL_STREAM", "8:12345"}};  // inherited, but stderr is not that stream
    Daemon d(o);
    const auto lines = d.log_lines("event=listening");
    ASSERT_FALSE(lines.empty()) << d.log();
    EXPECT_EQ(lines[0].rfind("event=listening", 0), 0u) << lines[0];
}

TEST(Logs, NoPriorityPrefixesOnAPlainStderr) {
    Daemon d;
    const auto lines = d.log_lines("event=listening");
    ASSERT_FALSE(lines.empty()) << d.log();
    EXPECT_EQ(lines[0].rfind("event=listening", 0), 0u) << lines[0];
}

TEST(DaemonMode, InheritedDescriptorsAreClosed) {
    DaemonOptions o;
    o.foreground = false;
    o.config_lines = {"listen = 127.0.0.1:" + std::to_string(free_tcp_port())};
    // The launcher inherits fds 7 and 8 (files it has no use for) from its parent shell.
    o.launch_prefix = {"sh", "-c", "exec 7</etc/hostname 8</etc/passwd; exec \"$@\"", "sh"};
    Daemon d(o);
    ASSERT_EQ(d.launcher_exit_code(), 0) << d.launcher_stderr();
    const std::string fd_dir = "/proc/" + std::to_string(d.pid()) + "/fd/";
    for (const auto& e : fs::directory_iterator(fd_dir)) {
        const std::string target = readlink_str(e.path().string());
        EXPECT_TRUE(target != "/etc/hostname" && target != "/etc/passwd")
            << "fd " << e.path().filename() << " inherited: " << target;
    }
}
