// SPDX-License-Identifier: MIT
// log-target: a file of forkd's own (timestamped lines, reopened on SIGUSR1 after logrotate
// moved it), and the warning on the launcher's stderr when a detached forkd would log to a
// syslog that is not there. The syslog check's path is pointed at a missing socket with
// FORKD_TEST_SYSLOG_PATH (the host's /dev/log cannot be removed by a test).
#include "harness.hpp"
#include "harness/log_text.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <regex>
#include <string>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

std::string file_or_empty(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? read_file(path) : std::string();
}

bool wait_file_contains(const std::string& path, const std::string& needle, Millis timeout = 5s) {
    return eventually([&] { return file_or_empty(path).find(needle) != std::string::npos; }, timeout);
}

// One echo connection from connect to close, so that its connection-end line is logged.
void one_connection(std::uint16_t port) {
    auto fd = connect_tcp(port);
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(echo_roundtrip(fd.get(), "logged\n"));
}

DaemonOptions logging_to(const TempDir& dir, std::uint16_t port) {
    return config({"listen = 127.0.0.1:" + std::to_string(port), "log-target = " + dir.file("own.log")});
}

} // namespace

TEST(LogTarget, FileGetsEveryLineWithATimestamp) {
    TempDir dir;
    const auto port = free_tcp_port();
    Daemon d(logging_to(dir, port));
    const std::string path = dir.file("own.log");
    ASSERT_TRUE(wait_file_contains(path, "event=started")) << file_or_empty(path);
    one_connection(port);
    ASSERT_TRUE(wait_file_contains(path, "event=connection-end")) << file_or_empty(path);
    const std::regex line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d forkd\[\d+\] )"
                          R"((debug|info|notice|warning|err): event=[a-z-]+( .*)?)");
    for (const auto& text : lines_of(file_or_empty(path)))
        EXPECT_TRUE(std::regex_match(text, line)) << text;
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
    EXPECT_EQ(file_or_empty(d.log_path()), "");  // nothing left on stderr
}

TEST(LogTarget, SigusrOneReopensTheFileLogrotateMovedAway) {
    TempDir dir;
    const auto port = free_tcp_port();
    Daemon d(logging_to(dir, port));
    const std::string path = dir.file("own.log"), rotated = dir.file("own.log.1");
    ASSERT_TRUE(wait_file_contains(path, "event=started"));
    ASSERT_EQ(std::rename(path.c_str(), rotated.c_str()), 0);
    d.signal(SIGUSR1);
    // The reopen happens in the loop; lines logged before it still go to the rotated file.
    ASSERT_TRUE(eventually([&] {
        one_connection(port);
        return file_or_empty(path).find("event=connection-end") != std::string::npos;
    }, 5s)) << file_or_empty(rotated);
    const std::size_t rotated_size = file_or_empty(rotated).size();
    one_connection(port);
    ASSERT_TRUE(wait_file_contains(path, "event=connection-end"));
    EXPECT_EQ(file_or_empty(rotated).size(), rotated_size) << "still writing to the rotated file";
    EXPECT_NE(file_or_empty(rotated).find("event=started"), std::string::npos);
}

TEST(LogTarget, AFileThatCannotBeOpenedStopsTheStart) {
    DaemonOptions o = config({"log-target = /nonexistent-dir/forkd.log"});
    o.expect_ready = false;
    o.foreground = false;
    Daemon d(o);
    EXPECT_EQ(d.launcher_exit_code(), 3);
    EXPECT_NE(d.launcher_stderr().find("/nonexistent-dir/forkd.log"), std::string::npos)
        << d.launcher_stderr();
}

TEST(LogTarget, DetachedWithoutSyslogWarnsOnTheLaunchersStderr) {
    TempDir dir;
    DaemonOptions o;
    o.foreground = false;
    o.config_lines = {"listen = 127.0.0.1:" + std::to_string(free_tcp_port())};
    o.env["FORKD_TEST_SYSLOG_PATH"] = dir.file("no-syslog-here");
    Daemon d(o);
    ASSERT_EQ(d.launcher_exit_code(), 0) << d.launcher_stderr();
    EXPECT_NE(d.launcher_stderr().find("no syslog daemon listens on /dev/log"), std::string::npos)
        << d.launcher_stderr();
    EXPECT_NE(d.launcher_stderr().find("log-target"), std::string::npos) << d.launcher_stderr();
}

TEST(LogTarget, DetachedToAFileNeedsNoSyslog) {
    TempDir dir;
    const auto port = free_tcp_port();
    DaemonOptions o = logging_to(dir, port);
    o.foreground = false;
    o.env["FORKD_TEST_SYSLOG_PATH"] = dir.file("no-syslog-here");
    Daemon d(o);
    ASSERT_EQ(d.launcher_exit_code(), 0) << d.launcher_stderr();
    EXPECT_EQ(d.launcher_stderr(), "");
    one_connection(port);
    EXPECT_TRUE(wait_file_contains(dir.file("own.log"), "event=connection-end"));
}
