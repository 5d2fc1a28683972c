// SPDX-License-Identifier: MIT
// Exec'd handlers through the real forkd: what the handler inherits (environment, fds, signal
// state, argv, identity, limits), timeouts, failures, stderr and accounting. The handler programs
// are tests/integration/handlers/*.cpp, built as forkd_test_NAME next to this binary.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

using namespace forkd::test;

namespace {

std::string helper(const std::string& name) {
    return std::string(FORKD_TEST_HELPERS_DIR) + "/forkd_test_" + name;
}

DaemonOptions exec_daemon(const std::string& exec_line, const std::vector<std::string>& extra = {},
                          const std::string& listen = "127.0.0.1:0") {
    DaemonOptions options;
    options.config_lines = {"listen = " + listen, "exec = " + exec_line};
    options.config_lines.insert(options.config_lines.end(), extra.begin(), extra.end());
    return options;
}

// What forkd_test_print_env reported.
struct Report {
    bool complete = false;  // saw "end"
    std::vector<std::string> argv;
    std::set<std::string> env;
    std::map<int, std::string> fds;
    std::map<std::string, std::string> status;  // SigBlk, SigIgn, Uid, Gid, Groups
    std::map<std::string, std::string> values;  // rlimit-nofile, umask, cwd
    std::string raw;

    std::string env_value(const std::string& name) const {
        for (const auto& entry : env)
            if (entry.rfind(name + "=", 0) == 0) return entry.substr(name.size() + 1);
        return "";
    }
};

std::string trim(std::string text) {
    auto space = [](unsigned char c) { return std::isspace(c); };
    text.erase(text.begin(), std::find_if_not(text.begin(), text.end(), space));
    text.erase(std::find_if_not(text.rbegin(), text.rend(), space).base(), text.end());
    return text;
}

Report parse_report(const std::string& text) {
    Report report;
    report.raw = text;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        auto space = line.find(' ');
        std::string kind = line.substr(0, space);
        std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
        if (kind == "end") {
            report.complete = true;
        } else if (kind == "argv") {
            report.argv.push_back(rest.substr(rest.find(' ') + 1));
        } else if (kind == "env") {
            report.env.insert(rest);
        } else if (kind == "fd") {
            auto sep = rest.find(' ');
            report.fds[std::stoi(rest.substr(0, sep))] = rest.substr(sep + 1);
        } else if (kind == "status") {
            auto colon = rest.find(':');
            report.status[rest.substr(0, colon)] = trim(rest.substr(colon + 1));
        } else {
            report.values[kind] = rest;
        }
    }
    return report;
}

Report report_from(int fd) {
    ::shutdown(fd, SHUT_WR);
    return parse_report(read_until_eof(fd));
}

Report report_over_tcp(const Daemon& daemon) {
    auto fd = connect_tcp(daemon.port());
    EXPECT_TRUE(fd.valid());
    return report_from(fd.get());
}

std::string tabbed(std::initializer_list<unsigned> ids) {
    std::string text;
    for (unsigned id : ids) {
        if (!text.empty()) text += '\t';
        text += std::to_string(id);
    }
    return text;
}

std::vector<gid_t> sorted_groups_field(const std::string& field) {
    std::vector<gid_t> groups;
    std::istringstream in(field);
    for (gid_t g; in >> g;) groups.push_back(g);
    std::sort(groups.begin(), groups.end());
    return groups;
}

// A user with supplementary groups if the system has one (to see them applied), else nobody.
std::string user_with_most_groups() {
    std::string best = "nobody";
    setgrent();
    while (group* g = getgrent()) {
        for (char** member = g->gr_mem; member && *member; ++member)
            if (getpwnam(*member)) best = *member;
        if (best != "nobody") break;
    }
    endgrent();
    return best;
}

std::uint64_t total(const Daemon& daemon, const std::string& key) {
    auto status = status_json(daemon);
    if (!status) {
        ADD_FAILURE() << status.error().message();
        return ~0ull;
    }
    return (*status)["totals"].value(key, ~0ull);
}

} // namespace

TEST(Exec, ProgramIsCheckedWhenTheConfigIsLoaded) {
    TempDir dir;
    write_file(dir.file("forkd.conf"), "listen = 127.0.0.1:0\nexec = /nonexistent/handler arg\n");
    auto result = run({FORKD_BINARY, "-t", "-c", dir.file("forkd.conf")});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.err.find("option 'exec'"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("/nonexistent/handler"), std::string::npos) << result.err;
}

TEST(Exec, TcpEnvironmentIsUcspiPlusConfiguredAndNothingOfTheDaemons) {
    DaemonOptions options = exec_daemon(helper("print_env"),
                                        {"env = GREETING=hello world", "pass-env = FORKD_TEST_PASSED",
                                         "pass-env = FORKD_TEST_UNSET"});
    options.env = {{"FORKD_TEST_PASSED", "passed value"}, {"FORKD_TEST_SECRET", "must not leak"}};
    Daemon d(options);
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    const std::uint16_t client_port = local_port(fd.get());
    Report report = report_from(fd.get());
    ASSERT_TRUE(report.complete) << report.raw;

    std::string id = report.env_value("FORKD_CONNECTION_ID");
    ASSERT_FALSE(id.empty()) << report.raw;
    EXPECT_TRUE(std::all_of(id.begin(), id.end(), ::isdigit)) << id;
    std::set<std::string> expected = {"PROTO=TCP",
                                      "TCPLOCALIP=127.0.0.1",
                                      "TCPLOCALPORT=" + std::to_string(d.port()),
                                      "TCPREMOTEIP=127.0.0.1",
                                      "TCPREMOTEPORT=" + std::to_string(client_port),
                                      "FORKD_CONNECTION_ID=" + id,
                                      "GREETING=hello world",
                                      "FORKD_TEST_PASSED=passed value"};
    EXPECT_EQ(report.env, expected);
    EXPECT_EQ(report.values["cwd"], "/") << "default working directory";
    EXPECT_EQ(report.values["umask"], "0022") << "default umask";

    Report second = report_over_tcp(d);
    EXPECT_NE(second.env_value("FORKD_CONNECTION_ID"), id) << "ids are unique per connection";
}

TEST(Exec, UnixListenerEnvironmentCarriesThePeerCredentials) {
    TempDir sockets;
    const std::string path = sockets.file("exec.sock");
    Daemon d(exec_daemon(helper("print_env"), {}, "unix:" + path));
    auto fd = connect_unix(path);
    ASSERT_TRUE(fd.valid());
    Report report = report_from(fd.get());
    ASSERT_TRUE(report.complete) << report.raw;
    std::string id = report.env_value("FORKD_CONNECTION_ID");
    std::set<std::string> expected = {"PROTO=UNIX",
                                      "UNIXREMOTEUID=" + std::to_string(::getuid()),
                                      "UNIXREMOTEGID=" + std::to_string(::getgid()),
                                      "UNIXREMOTEPID=" + std::to_string(::getpid()),
                                      "FORKD_CONNECTION_ID=" + id};
    EXPECT_EQ(report.env, expected);
}

TEST(Exec, OnlyFdsZeroToTwoAreOpenAndStdioIsTheConnection) {
    Daemon d(exec_daemon(helper("print_env")));
    Report report = report_over_tcp(d);
    ASSERT_TRUE(report.complete) << report.raw;
    std::set<int> fds;
    for (const auto& [fd, target] : report.fds) fds.insert(fd);
    EXPECT_EQ(fds, (std::set<int>{0, 1, 2})) << report.raw;
    EXPECT_EQ(report.fds[0].rfind("socket:", 0), 0u) << report.fds[0];
    EXPECT_EQ(report.fds[0], report.fds[1]) << "fds 0 and 1 are the same connection";
    EXPECT_EQ(report.fds[2].rfind("pipe:", 0), 0u) << "fd 2 leads to forkd's log: " << report.fds[2];
}

TEST(Exec, SignalDispositionsAreDefaultAndTheMaskIsEmpty) {
    Daemon d(exec_daemon(helper("print_env")));
    Report report = report_over_tcp(d);
    ASSERT_TRUE(report.complete) << report.raw;
    EXPECT_EQ(report.status["SigBlk"], "0000000000000000") << "the master blocks SIGCHLD, SIGTERM...";
    EXPECT_EQ(report.status["SigIgn"], "0000000000000000") << "the master ignores SIGPIPE";
}

TEST(Exec, ArgvIsSplitLikeAShellWouldWithoutRunningOne) {
    Daemon d(exec_daemon(helper("print_env") +
                         R"( 'two words' "dq \"inner\"" back\ slash '' $HOME *.none plain)"));
    Report report = report_over_tcp(d);
    ASSERT_TRUE(report.complete) << report.raw;
    std::vector<std::string> expected = {helper("print_env"), "two words", "dq \"inner\"", "back slash",
                                         "",                  "$HOME",     "*.none",       "plain"};
    EXPECT_EQ(report.argv, expected);
}

TEST(Exec, UserDropBringsTheUsersGroupsAndNothingElse) {
    if (::geteuid() != 0) GTEST_SKIP() << "identity changes need root; these tests run as uid " << ::geteuid();
    const std::string user = user_with_most_groups();
    passwd* pw = ::getpwnam(user.c_str());
    ASSERT_NE(pw, nullptr);
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    std::vector<gid_t> expected_groups(64);
    int count = static_cast<int>(expected_groups.size());
    ASSERT_GE(::getgrouplist(user.c_str(), gid, expected_groups.data(), &count), 0);
    expected_groups.resize(static_cast<std::size_t>(count));
    std::sort(expected_groups.begin(), expected_groups.end());

    Daemon d(exec_daemon(helper("print_env"), {"user = " + user}));
    Report report = report_over_tcp(d);
    ASSERT_TRUE(report.complete) << report.raw;
    EXPECT_EQ(report.status["Uid"], tabbed({uid, uid, uid, uid})) << "real, effective, saved, fs";
    EXPECT_EQ(report.status["Gid"], tabbed({gid, gid, gid, gid}));
    EXPECT_EQ(sorted_groups_field(report.status["Groups"]), expected_groups) << "user " << user;
}

TEST(Exec, GroupAloneChangesOnlyTheGroup) {
    if (::geteuid() != 0) GTEST_SKIP() << "identity changes need root; these tests run as uid " << ::geteuid();
    group* nogroup = ::getgrgid(65534);
    if (!nogroup) GTEST_SKIP() << "no group with gid 65534 here";
    Daemon d(exec_daemon(helper("print_env"), {std::string("group = ") + nogroup->gr_name}));
    Report report = report_over_tcp(d);
    ASSERT_TRUE(report.complete) << report.raw;
    EXPECT_EQ(report.status["Uid"], tabbed({0, 0, 0, 0}));
    EXPECT_EQ(report.status["Gid"], tabbed({65534, 65534, 65534, 65534}));
    EXPECT_EQ(sorted_groups_field(report.status["Groups"]), std::vector<gid_t>{65534})
        << "root's own supplementary groups are dropped too";
}

TEST(Exec, RlimitUmaskAndWorkingDirectoryApply) {
    Daemon d(exec_daemon(helper("print_env"), {"rlimit-nofile = 42", "umask = 027", "chdir = /tmp"}));
    Report report = report_over_tcp(d);
    ASSERT_TRUE(report.complete) << report.raw;
    EXPECT_EQ(report.values["rlimit-nofile"], "42/42");
    EXPECT_EQ(report.values["umask"], "0027");
    EXPECT_EQ(report.values["cwd"], "/tmp");
}

TEST(Exec, ConnectionTimeoutEndsTheHandler) {
    Daemon d(exec_daemon(helper("sleeper"), {"connection-timeout = 1"}));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_EQ(read_n(fd.get(), 6), "ready\n");
    EXPECT_TRUE(wait_closed(fd.get(), 10s)) << "the handler outlived connection-timeout";
    EXPECT_TRUE(d.wait_log("ended_by=timeout")) << d.log();
    EXPECT_TRUE(eventually([&] { return d.children().empty(); }));
}

TEST(Exec, ConnectionTimeoutKillsAHandlerThatIgnoresSigterm) {
    Daemon d(exec_daemon(helper("sleeper") + " --ignore-term", {"connection-timeout = 1"}));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_EQ(read_n(fd.get(), 6), "ready\n");
    EXPECT_TRUE(wait_closed(fd.get(), 15s)) << "SIGKILL must follow the ignored SIGTERM";
    EXPECT_TRUE(d.wait_log("exit=signal:KILL")) << d.log();
    EXPECT_TRUE(eventually([&] { return d.children().empty(); }));
}

TEST(Exec, IdleTimeoutFollowsTheKernelsViewOfTheSocket) {
    Daemon d(exec_daemon(helper("echo_loop"), {"idle-timeout = 1"}));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    // Traffic every 300 ms for well over the idle timeout keeps the handler alive...
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(echo_roundtrip(fd.get(), "ping " + std::to_string(i) + "\n")) << "round " << i;
        std::this_thread::sleep_for(300ms);
    }
    // ...silence ends it.
    EXPECT_TRUE(wait_closed(fd.get(), 10s)) << "an idle exec'd handler was not ended";
    EXPECT_TRUE(d.wait_log("ended_by=idle")) << d.log();
}

TEST(Exec, MissingProgramIsCountedAsFailedAndTheDaemonCarriesOn) {
    TempDir programs;
    const std::string program = programs.file("handler");
    namespace fs = std::filesystem;
    fs::copy_file(helper("print_env"), program);
    Daemon d(exec_daemon(program));
    fs::remove(program);

    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    EXPECT_EQ(read_until_eof(fd.get()), "") << "a failed spawn closes the connection";
    EXPECT_TRUE(d.wait_log("event=handler-failed")) << d.log();
    EXPECT_TRUE(d.wait_log("execve " + program + ": No such file or directory")) << d.log();
    EXPECT_EQ(total(d, "failed"), 1u);

    fs::copy_file(helper("print_env"), program);
    Report report = report_over_tcp(d);
    EXPECT_TRUE(report.complete) << "the daemon serves again once the program is back";
    EXPECT_EQ(total(d, "failed"), 1u);
}

TEST(Exec, FailingSetupStepIsLoggedWithIdAndErrnoAndCounted) {
    // As root: nobody may not enter a 0700 directory of root's, so chdir fails after the drop.
    // Otherwise becoming root fails (no privilege to change groups or ids).
    TempDir locked;
    ASSERT_EQ(::chmod(locked.path().c_str(), 0700), 0);
    const std::string user = ::geteuid() == 0 ? "nobody" : "root";
    Daemon d(exec_daemon(helper("print_env"), {"user = " + user, "chdir = " + locked.path()}));
    for (int i = 0; i < 2; ++i) {
        auto fd = connect_tcp(d.port());
        ASSERT_TRUE(fd.valid());
        EXPECT_EQ(read_until_eof(fd.get()), "") << "the handler must not run after a failed step";
    }
    const std::string why = ::geteuid() == 0 ? "chdir " + locked.path() + ": Permission denied"
                                             : "Operation not permitted";
    EXPECT_TRUE(eventually([&] { return d.count_log("event=handler-failed") == 2; })) << d.log();
    EXPECT_TRUE(d.wait_log("event=handler-failed id=1 ")) << d.log();
    EXPECT_TRUE(d.wait_log(why)) << d.log();
    EXPECT_EQ(total(d, "failed"), 2u);
    EXPECT_TRUE(d.running());
}

TEST(Exec, CrashingProgramIsCountedAsFailedAndTheDaemonCarriesOn) {
    Daemon d(exec_daemon(helper("crasher")));
    for (int i = 0; i < 2; ++i) {
        auto fd = connect_tcp(d.port());
        ASSERT_TRUE(fd.valid());
        EXPECT_EQ(read_until_eof(fd.get()), "");
    }
    EXPECT_TRUE(eventually([&] { return d.count_log("exit=signal:SEGV") == 2; })) << d.log();
    EXPECT_TRUE(d.running());
    EXPECT_EQ(total(d, "failed"), 2u);
}

TEST(Exec, HandlerStderrGoesToTheLogTaggedWithTheConnectionNotToTheClient) {
    Daemon d(exec_daemon(helper("stderr_writer")));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    ::shutdown(fd.get(), SHUT_WR);
    std::string got = read_until_eof(fd.get());
    ASSERT_EQ(got.rfind("to-client ", 0), 0u) << got;
    std::string id = trim(got.substr(std::string("to-client ").size()));
    EXPECT_EQ(got, "to-client " + id + "\n") << "nothing of stderr reaches the client";
    EXPECT_TRUE(d.wait_log("event=handler-stderr id=" + id + " line=\"to-log first from " + id + "\""))
        << d.log();
    EXPECT_TRUE(d.wait_log("event=handler-stderr id=" + id + " line=\"to-log second without newline\""))
        << d.log();
}

TEST(Exec, ExitStatusAndTcpBytesAreAccounted) {
    Daemon d(exec_daemon(helper("echo_loop")));
    auto fd = connect_tcp(d.port());
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(echo_roundtrip(fd.get(), "hello"));
    ::shutdown(fd.get(), SHUT_WR);
    EXPECT_EQ(read_until_eof(fd.get()), "");
    EXPECT_TRUE(d.wait_log("exit=exit:0")) << d.log();
    std::string log = d.log();
    auto end = log.find("event=connection-end");
    ASSERT_NE(end, std::string::npos) << log;
    std::string line = log.substr(end, log.find('\n', end) - end);
    EXPECT_NE(line.find("bytes_in=5"), std::string::npos) << line;
    EXPECT_NE(line.find("bytes_out=5"), std::string::npos) << line;
}
