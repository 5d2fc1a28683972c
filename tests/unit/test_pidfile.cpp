// SPDX-License-Identifier: MIT
#include "daemon/pidfile.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

namespace fs = std::filesystem;
using forkd::AlreadyRunning;
using forkd::Pidfile;

namespace {

class PidfileTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "forkd-pidfile-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string path(const std::string& name = "forkd.pid") const { return (dir_ / name).string(); }

    fs::path dir_;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
}

int wait_exit_code(pid_t pid) {
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A pid that certainly belonged to a process that is gone now.
pid_t dead_pid() {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    wait_exit_code(pid);
    return pid;
}

// Exit codes of the probing child: 0 = AlreadyRunning with the expected pid and message.
int probe_in_child(const std::string& path, pid_t expected_holder) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        try {
            Pidfile::acquire(path);
            ::_exit(1);
        } catch (const AlreadyRunning& e) {
            const std::string expected = "already running (pid " + std::to_string(expected_holder) + ")";
            ::_exit(e.pid == expected_holder && e.what() == expected ? 0 : 2);
        } catch (...) {
            ::_exit(3);
        }
    }
    return wait_exit_code(pid);
}

} // namespace

TEST_F(PidfileTest, WritesPidAndNewline) {
    Pidfile pidfile = Pidfile::acquire(path());
    EXPECT_EQ(pidfile.path(), path());
    EXPECT_EQ(read_file(path()), std::to_string(::getpid()) + "\n");
    struct stat st{};
    ASSERT_EQ(::stat(path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(PidfileTest, SecondAcquireWhileLockedThrowsAlreadyRunningWithPid) {
    Pidfile pidfile = Pidfile::acquire(path());
    EXPECT_EQ(probe_in_child(path(), ::getpid()), 0);
    // The refused attempt must not have touched the holder's file.
    EXPECT_EQ(read_file(path()), std::to_string(::getpid()) + "\n");
}

TEST_F(PidfileTest, AlreadyRunningMessage) {
    EXPECT_STREQ(AlreadyRunning(4242).what(), "already running (pid 4242)");
    EXPECT_EQ(AlreadyRunning(4242).pid, 4242);
}

TEST_F(PidfileTest, StaleFileWithDeadPidIsReused) {
    write_file(path(), std::to_string(dead_pid()) + "\n");
    Pidfile pidfile = Pidfile::acquire(path());
    EXPECT_EQ(read_file(path()), std::to_string(::getpid()) + "\n");
}

TEST_F(PidfileTest, LongerStaleContentIsTruncated) {
    write_file(path(), "1234567890123\ngarbage after\n");
    Pidfile pidfile = Pidfile::acquire(path());
    EXPECT_EQ(read_file(path()), std::to_string(::getpid()) + "\n");
}

TEST_F(PidfileTest, LockHeldByAnotherProcessThenFreedByItsDeath) {
    int ready_pipe[2];
    ASSERT_EQ(::pipe(ready_pipe), 0);
    const pid_t holder = ::fork();
    if (holder == 0) {
        ::close(ready_pipe[0]);
        try {
            Pidfile held = Pidfile::acquire(path());
            (void)!::write(ready_pipe[1], "x", 1);
            for (;;) ::pause();
        } catch (...) {
            ::_exit(1);
        }
    }
    ::close(ready_pipe[1]);
    char byte = 0;
    ASSERT_EQ(::read(ready_pipe[0], &byte, 1), 1);
    ::close(ready_pipe[0]);

    try {
        Pidfile::acquire(path());
        ADD_FAILURE() << "acquire succeeded while another process held the lock";
    } catch (const AlreadyRunning& e) {
        EXPECT_EQ(e.pid, holder);
    }

    // A SIGKILLed daemon leaves its file behind, unlocked: it must not block the next start.
    ::kill(holder, SIGKILL);
    EXPECT_EQ(wait_exit_code(holder), 128 + SIGKILL);
    ASSERT_TRUE(fs::exists(path()));
    Pidfile pidfile = Pidfile::acquire(path());
    EXPECT_EQ(read_file(path()), std::to_string(::getpid()) + "\n");
}

TEST_F(PidfileTest, RemoveUnlinksAndLockStaysUntilDestruction) {
    Pidfile pidfile = Pidfile::acquire(path());
    pidfile.remove();
    EXPECT_FALSE(fs::exists(path()));
    pidfile.remove();  // idempotent
    // A new instance can start on the fresh path at once.
    const pid_t pid = ::fork();
    if (pid == 0) {
        try {
            Pidfile next = Pidfile::acquire(path());
            ::_exit(read_file(path()) == std::to_string(::getpid()) + "\n" ? 0 : 2);
        } catch (...) {
            ::_exit(1);
        }
    }
    EXPECT_EQ(wait_exit_code(pid), 0);
}

TEST_F(PidfileTest, DestructionKeepsFileButReleasesLock) {
    { Pidfile pidfile = Pidfile::acquire(path()); }
    EXPECT_TRUE(fs::exists(path()));
    EXPECT_NO_THROW(Pidfile::acquire(path()));
}

TEST_F(PidfileTest, MoveTransfersTheLock) {
    Pidfile first = Pidfile::acquire(path());
    Pidfile moved = std::move(first);
    EXPECT_EQ(probe_in_child(path(), ::getpid()), 0);
    EXPECT_EQ(moved.path(), path());
}

TEST_F(PidfileTest, CreatesMissingParentDirectories) {
    ::umask(077);
    const std::string nested = path("run/forkd/forkd.pid");
    Pidfile pidfile = Pidfile::acquire(nested);
    ::umask(022);
    EXPECT_EQ(read_file(nested), std::to_string(::getpid()) + "\n");
    struct stat st{};
    ASSERT_EQ(::stat((dir_ / "run/forkd").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST_F(PidfileTest, ErrorsNameThePath) {
    write_file(path("plainfile"), "");
    const std::string bad = path("plainfile") + "/forkd.pid";
    try {
        Pidfile::acquire(bad);
        FAIL() << "acquire under a regular file succeeded";
    } catch (const AlreadyRunning&) {
        FAIL() << "wrong exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOTDIR);
        EXPECT_NE(std::string(e.what()).find(path("plainfile")), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("Not a directory"), std::string::npos) << e.what();
    }
}

TEST_F(PidfileTest, OpenErrorMessageFormat) {
    // A directory where the file should be: open(O_RDWR) fails with EISDIR.
    fs::create_directory(path());
    try {
        Pidfile::acquire(path());
        FAIL() << "acquire on a directory succeeded";
    } catch (const std::system_error& e) {
        EXPECT_EQ(std::string(e.what()), "cannot open pidfile " + path() + ": Is a directory");
    }
}
