// SPDX-License-Identifier: MIT
// What the configuration promises is checked when it loads, the same way by `forkd -t`, at the
// start and on reload, with FILE:LINE: option; and what it promises is then done (built-in
// handlers run as user/group). Also the load's rough edges (-c DIRECTORY, a missing file) and
// forkctl --json with no daemon.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

using namespace forkd::test;

namespace {

// The harness writes three lines (pidfile, control socket, log level) before the test's.
constexpr int kFirstTestLine = 4;

struct BadConfig {
    std::vector<std::string> lines;  // the last one is the bad one
    std::string option, reason;
};

std::vector<BadConfig> bad_configs(const std::string& script) {
    return {
        {{"user = forkd-no-such-user"}, "user", "no such user 'forkd-no-such-user'"},
        {{"group = forkd-no-such-group"}, "group", "no such group 'forkd-no-such-group'"},
        {{"exec = /bin/cat", "chdir = /nonexistent-dir"}, "chdir", "'/nonexistent-dir': No such file or directory"},
        {{"exec = " + script}, "exec", script + ": interpreter '/nonexistent/interp' (its #! line)"},
    };
}

// "FILE:LINE: option 'NAME': REASON" for the bad config's last line.
std::string expected_error(const std::string& file, const BadConfig& bad) {
    const int line = kFirstTestLine + static_cast<int>(bad.lines.size());  // after listen
    return file + ":" + std::to_string(line) + ": option '" + bad.option + "': " + bad.reason;
}

std::string script_with_missing_interpreter(const TempDir& dir) {
    const std::string path = dir.file("script");
    write_file(path, "#!/nonexistent/interp\nexit 0\n");
    ::chmod(path.c_str(), 0755);
    return path;
}

std::vector<std::string> with_listen(std::uint16_t port, std::vector<std::string> lines) {
    lines.insert(lines.begin(), "listen = 127.0.0.1:" + std::to_string(port));
    return lines;
}

// The user's groups as /proc/PID/status shows them: ascending, each followed by a space.
std::string groups_of(const passwd& user) {
    std::vector<gid_t> groups(64);
    int count = static_cast<int>(groups.size());
    if (::getgrouplist(user.pw_name, user.pw_gid, groups.data(), &count) < 0) return "?";
    groups.resize(static_cast<std::size_t>(count));
    std::sort(groups.begin(), groups.end());
    groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
    std::string text;
    for (gid_t g : groups) text += std::to_string(g) + " ";
    return text;
}

std::string proc_status_line(pid_t pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + ":", 0) == 0) return line;
    return "";
}

} // namespace

TEST(LoadChecks, CheckStartAndReloadRefuseTheSameConfigsWithFileAndLine) {
    TempDir scripts;
    const std::string script = script_with_missing_interpreter(scripts);
    const auto port = free_tcp_port();
    DaemonOptions good;
    good.config_lines = with_listen(port, {});
    Daemon running(good);
    std::size_t failed_reloads = 0;
    for (const BadConfig& bad : bad_configs(script)) {
        SCOPED_TRACE(bad.lines.back());
        // Each reload notifies systemd thrice; read them so the test's notify socket never fills.
        (void)running.notifications();
        // Reload: refused, and the running configuration keeps serving.
        running.rewrite_config(with_listen(port, bad.lines));
        ++failed_reloads;
        ASSERT_TRUE(eventually([&] { return running.count_log("event=reload result=failed") >= failed_reloads; }))
            << running.log();
        const std::string error = expected_error(running.config_path(), bad);
        EXPECT_NE(running.log_lines("event=reload result=failed").back().find(error), std::string::npos)
            << "expected " << error << " in\n" << running.log();
        auto reply = forkctl(running, {"reload"});
        EXPECT_EQ(reply.exit_code, 1) << reply.err;
        EXPECT_NE(reply.err.find(error), std::string::npos) << reply.err;
        ++failed_reloads;
        auto client = connect_tcp(port);
        EXPECT_TRUE(echo_roundtrip(client.get(), "still served")) << running.log();

        // forkd -t on the same file.
        auto checked = run({FORKD_BINARY, "-t", "-c", running.config_path()});
        EXPECT_EQ(checked.exit_code, 1) << checked.out;
        EXPECT_NE(checked.err.find(error), std::string::npos) << checked.err;

        // The start.
        DaemonOptions o = config(bad.lines);
        o.expect_ready = false;
        Daemon refused(o);
        EXPECT_EQ(refused.wait_exit(10s), 1) << refused.log();
        EXPECT_NE(refused.log().find(expected_error(refused.config_path(), bad)), std::string::npos)
            << refused.log();
    }
}

TEST(LoadChecks, UnprivilegedForkdRefusesAnotherUserAtLoad) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run forkd -t as nobody";
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);
    const std::string file = dir.file("forkd.conf");
    write_file(file, "listen = 127.0.0.1:7\nuser = root\n");
    ::chmod(file.c_str(), 0644);
    auto r = run({"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", FORKD_BINARY, "-t", "-c", file});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.err.find(file + ":2: option 'user': forkd runs as uid "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("not root, and cannot run handlers as 'root'"), std::string::npos) << r.err;
}

TEST(BuiltinIdentity, BuiltInHandlerRunsAsTheConfiguredUser) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs a root forkd to drop to another user";
    passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    Daemon d(config({"handler = echo", "user = nobody"}));
    auto client = connect_tcp(d.port());
    ASSERT_TRUE(client.valid());
    ASSERT_TRUE(echo_roundtrip(client.get(), "who serves me"));  // the handler runs now
    ASSERT_TRUE(eventually([&] { return d.children().size() == 1; })) << d.log();
    const pid_t handler = d.children().front();
    const std::string uid = std::to_string(nobody->pw_uid), gid = std::to_string(nobody->pw_gid);
    EXPECT_EQ(proc_status_line(handler, "Uid"), "Uid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid);
    EXPECT_EQ(proc_status_line(handler, "Gid"), "Gid:\t" + gid + "\t" + gid + "\t" + gid + "\t" + gid);
    EXPECT_EQ(proc_status_line(handler, "Groups"), "Groups:\t" + groups_of(*nobody))
        << "nobody's groups, not root's";
    // The spawner itself stays root: it must go on forking for every configuration.
    EXPECT_EQ(proc_status_line(d.spawner_pid(), "Uid"), "Uid:\t0\t0\t0\t0");
    EXPECT_TRUE(echo_roundtrip(client.get(), "and serves on"));
}

TEST(LoadChecks, ConfigDirectoryIsNamedAsADirectory) {
    TempDir dir;
    auto r = run({FORKD_BINARY, "-t", "-c", dir.path()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "forkd: " + dir.path() + ": is a directory, not a config file\n");
}

TEST(LoadChecks, MissingConfigFileIsOneError) {
    TempDir dir;
    auto r = run({FORKD_BINARY, "-t", "-c", dir.file("missing.conf")});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "forkd: " + dir.file("missing.conf") + ": cannot read: No such file or directory\n");
}

TEST(LoadChecks, IdleTimeoutOnAUnixListenerWarnsForExec) {
    TempDir dir;
    const std::string file = dir.file("forkd.conf");
    write_file(file, "listen = unix:" + dir.file("s.sock") + "\nexec = /bin/cat\nidle-timeout = 5\n");
    auto r = run({FORKD_BINARY, "-t", "-c", file});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("forkd: warning: " + file +
                         ":3: option 'idle-timeout': has no effect on exec'd handlers of UNIX listeners"),
              std::string::npos)
        << r.err;
}

TEST(ForkctlJson, DaemonDownIsOneJsonErrorOnStdout) {
    TempDir dir;
    auto r = run({FORKCTL_BINARY, "-s", dir.file("none.sock"), "--json", "status"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    nlohmann::json reply;
    ASSERT_NO_THROW(reply = nlohmann::json::parse(r.out)) << r.out;
    ASSERT_TRUE(reply.is_object()) << r.out;
    EXPECT_EQ(reply.value("ok", true), false) << r.out;
    EXPECT_EQ(reply.value("code", ""), "unreachable") << r.out;
    EXPECT_NE(reply.value("error", "").find(dir.file("none.sock")), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("forkctl: "), std::string::npos) << "the message stays on stderr too";
}
