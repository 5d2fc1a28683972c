// SPDX-License-Identifier: MIT
// Run files forkd creates as root in shared places (pidfile, control sockets, unix: listeners)
// are never symlinks it follows, and live only in a directory forkd can trust: its own or
// root's, writable by nobody else. A planted symlink or a stranger's directory is refused at
// start with exit 3 and a message naming it, and nothing outside is touched.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

using namespace forkd::test;
namespace fs = std::filesystem;

namespace {

constexpr uid_t nobody = 65534;

// A daemon whose pidfile and control socket live in TEMPDIR/run, made by PREPARE before start
// (the config is rewritten to point there).
// LISTEN names the listener, given the temp dir.
DaemonOptions in_run_dir(std::function<void(const std::string& run_dir)> prepare,
                         std::function<std::string(const TempDir&)> listen =
                             [](const TempDir&) { return std::string("127.0.0.1:0"); }) {
    DaemonOptions o;
    o.expect_ready = false;
    o.before_start = [prepare, listen](const TempDir& dir) {
        const std::string run = dir.file("run");
        prepare(run);
        write_file(dir.file("forkd.conf"), "pidfile = " + run + "/forkd.pid\ncontrol-socket = " + run +
                                               "/forkd.sock\nlog-level = debug\nlisten = " + listen(dir) + "\n");
    };
    return o;
}

// Starts it, expects exit 3 with NEEDLE in the log.
void expect_refused(Daemon& d, const std::string& needle) {
    auto status = d.wait_exit();
    ASSERT_TRUE(status.has_value()) << "forkd kept running:\n" << d.log();
    EXPECT_EQ(*status, 3) << d.log();
    EXPECT_NE(d.log().find(needle), std::string::npos) << "expected '" << needle << "' in:\n" << d.log();
}

} // namespace

// A daemon that finds NAME in its run dir a symlink to a file "victim" (which says "precious").
DaemonOptions with_symlink_as(const std::string& name) {
    DaemonOptions o;
    o.expect_ready = false;
    o.before_start = [name](const TempDir& dir) {
        write_file(dir.file("victim"), "precious\n");
        ASSERT_EQ(::symlink(dir.file("victim").c_str(), dir.file(name).c_str()), 0);
    };
    return o;
}

void expect_symlink_untouched(const Daemon& d, const std::string& path) {
    EXPECT_EQ(read_file(d.dir().file("victim")), "precious\n") << "the symlink's target was written";
    EXPECT_TRUE(fs::is_symlink(path)) << path << " was replaced";
}

TEST(RunFiles, APidfileSymlinkIsNotFollowed) {
    Daemon d(with_symlink_as("forkd.pid"));
    expect_refused(d, "pidfile " + d.pidfile() + ": it is a symbolic link");
    expect_symlink_untouched(d, d.pidfile());
}

TEST(RunFiles, AControlSocketSymlinkIsNotFollowed) {
    Daemon d(with_symlink_as("forkd.sock"));
    expect_refused(d, "control socket " + d.control_socket() + " exists and is not a socket");
    expect_symlink_untouched(d, d.control_socket());
    EXPECT_FALSE(fs::exists(d.pidfile())) << "a failed start left its pidfile";
}

TEST(RunFiles, AReadOnlyControlSocketSymlinkIsNotFollowed) {
    Daemon d(with_symlink_as("forkd.ro.sock"));
    expect_refused(d, "control socket " + d.dir().file("forkd.ro.sock") + " exists and is not a socket");
    expect_symlink_untouched(d, d.dir().file("forkd.ro.sock"));
    EXPECT_FALSE(fs::exists(d.control_socket())) << "a failed start left its control socket";
}

TEST(RunFiles, AWorldWritableRunDirIsRefused) {
    Daemon d(in_run_dir([](const std::string& run) {
        ASSERT_EQ(::mkdir(run.c_str(), 0755), 0);
        ASSERT_EQ(::chmod(run.c_str(), 0777), 0);
    }));
    expect_refused(d, "run directory " + d.dir().file("run") +
                          " is writable by others (mode 0777): refusing to keep forkd.pid there");
    EXPECT_FALSE(fs::exists(d.dir().file("run/forkd.pid")));
}

TEST(RunFiles, ARunDirOwnedByAnotherUserIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the directory away";
    Daemon d(in_run_dir([](const std::string& run) {
        ASSERT_EQ(::mkdir(run.c_str(), 0755), 0);
        ASSERT_EQ(::chown(run.c_str(), nobody, nobody), 0);
    }));
    expect_refused(d, "run directory " + d.dir().file("run") + " is owned by uid 65534, not by forkd's uid 0 or root");
    EXPECT_FALSE(fs::exists(d.dir().file("run/forkd.pid")));
}

TEST(RunFiles, AMissingRunDirIsCreated0755) {
    DaemonOptions o = in_run_dir([](const std::string&) {});
    o.expect_ready = true;
    Daemon d(o);
    struct stat st {};
    ASSERT_EQ(::stat(d.dir().file("run").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    EXPECT_EQ(st.st_uid, ::geteuid());
    EXPECT_TRUE(fs::exists(d.dir().file("run/forkd.pid")));
}

TEST(RunFiles, AUnixListenerInAStickyWorldWritableDirIsRefused) {
    Daemon d(in_run_dir(
        [](const std::string& run) {
            ASSERT_EQ(::mkdir(run.c_str(), 0755), 0);
            const std::string shared = run + "/../shared";
            ASSERT_EQ(::mkdir(shared.c_str(), 0755), 0);
            ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);
        },
        [](const TempDir& dir) { return "unix:" + dir.file("shared") + "/echo.sock"; }));
    expect_refused(d, "is writable by others (mode 1777): refusing to keep echo.sock there");
    EXPECT_FALSE(fs::exists(d.dir().file("shared/echo.sock")));
}

TEST(RunFiles, AUnixListenerSymlinkIsNotFollowed) {
    Daemon d(in_run_dir(
        [](const std::string& run) {
            ASSERT_EQ(::mkdir(run.c_str(), 0755), 0);
            write_file(run + "/victim", "precious\n");
            ASSERT_EQ(::symlink((run + "/victim").c_str(), (run + "/echo.sock").c_str()), 0);
        },
        [](const TempDir& dir) { return "unix:" + dir.file("run") + "/echo.sock"; }));
    expect_refused(d, "cannot bind unix:" + d.dir().file("run") + "/echo.sock");
    EXPECT_EQ(read_file(d.dir().file("run/victim")), "precious\n");
    EXPECT_TRUE(fs::is_symlink(d.dir().file("run/echo.sock")));
}
