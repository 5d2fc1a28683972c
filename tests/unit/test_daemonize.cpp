// SPDX-License-Identifier: MIT
#include "daemon/daemonize.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr int kTimeoutMs = 10000;

// What the daemon does once daemonize() returned in it.
enum class Behaviour { Ready, Fail, FailMultiline, FailCustomCode, Die, DropReadiness };

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string read_link(const std::string& path) {
    std::error_code ec;
    const fs::path target = fs::read_symlink(path, ec);
    if (!ec) return target.string();
    std::string error = "<";
    error += ec.message();
    return error + ">";
}

std::set<int> open_fds(pid_t pid) {
    std::set<int> fds;
    for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        fds.insert(std::stoi(entry.path().filename().string()));
    return fds;
}

// Field 4 of /proc/PID/stat; the command name may hold spaces, so count from the last ')'.
pid_t parent_of(pid_t pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    char state = 0;
    pid_t ppid = -1;
    rest >> state >> ppid;
    return ppid;
}

std::string umask_of(pid_t pid) {
    std::istringstream status(read_file("/proc/" + std::to_string(pid) + "/status"));
    for (std::string line; std::getline(status, line);)
        if (line.starts_with("Umask:")) return line.substr(line.find_first_not_of(" \t", 6));
    return "";
}

void write_line(int fd, const std::string& text) {
    const std::string line = text + "\n";
    (void)!::write(fd, line.data(), line.size());
}

// Runs in the daemon; never returns into the test framework.
[[noreturn]] void run_daemon(forkd::Readiness readiness, Behaviour behaviour, int report_fd) {
    switch (behaviour) {
    case Behaviour::Ready:
        readiness.ready();
        // Sent after ready() returned, so the readiness pipe is closed by the time the test looks.
        write_line(report_fd, std::to_string(::getpid()));
        for (;;) ::pause();
    case Behaviour::Fail:
        write_line(report_fd, std::to_string(::getpid()));
        readiness.failed(3, "boom");
        ::_exit(0);
    case Behaviour::FailMultiline:
        write_line(report_fd, std::to_string(::getpid()));
        readiness.failed(5, "cannot bind 127.0.0.1:7\nsecond line");
        ::_exit(0);
    case Behaviour::FailCustomCode:
        write_line(report_fd, std::to_string(::getpid()));
        readiness.failed(2, "already running (pid 1234)");
        ::_exit(0);
    case Behaviour::Die:
        write_line(report_fd, std::to_string(::getpid()));
        ::_exit(9);
    case Behaviour::DropReadiness:
        write_line(report_fd, std::to_string(::getpid()));
        { forkd::Readiness dropped = std::move(readiness); }
        ::_exit(0);
    }
    ::_exit(0);
}

struct Launch {
    int launcher_exit = -1;
    std::string launcher_stderr;
    pid_t daemon_pid = -1;
    int kept_fd = -1;  // the fd number the daemon kept (the test's report pipe)
};

int wait_with_timeout(pid_t pid) {
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd >= 0) {
        pollfd pfd{pidfd, POLLIN, 0};
        const int ready = ::poll(&pfd, 1, kTimeoutMs);
        ::close(pidfd);
        if (ready != 1) {
            ADD_FAILURE() << "process " << pid << " did not exit in time";
            ::kill(pid, SIGKILL);
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_line_with_timeout(int fd) {
    std::string line;
    while (line.find('\n') == std::string::npos) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, kTimeoutMs) != 1) break;
        char buf[64];
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        line.append(buf, static_cast<size_t>(n));
    }
    return line.substr(0, line.find('\n'));
}

class DaemonizeTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "forkd-daemonize-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        // Orphaned daemons are re-parented to this process, so they can be reaped by pid.
        ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    }
    void TearDown() override {
        for (pid_t pid : daemons_) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        ::prctl(PR_SET_CHILD_SUBREAPER, 0);
        fs::remove_all(dir_);
    }

    // Forks a launcher that daemonizes; closes the launcher's stdio first when asked.
    Launch launch(Behaviour behaviour, bool close_stdio = false) {
        int report[2];
        EXPECT_EQ(::pipe(report), 0);
        const fs::path stderr_path = dir_ / "launcher.stderr";
        const pid_t launcher = ::fork();
        if (launcher == 0) {
            ::close(report[0]);
            const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(err, STDERR_FILENO);
            ::close(err);
            // Leftovers a real launcher might leak: they must all be closed in the daemon.
            ::dup2(report[1], 40);
            ::open("/dev/null", O_RDONLY);
            ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
            ::umask(077);
            [[maybe_unused]] int ignored = ::chdir(dir_.c_str());
            if (close_stdio) {
                ::close(STDIN_FILENO);
                ::close(STDOUT_FILENO);
            }
            try {
                auto detached = forkd::daemonize({report[1]});
                if (!detached) ::_exit(99);
                run_daemon(std::move(*detached), behaviour, report[1]);
            } catch (...) {
                ::_exit(99);
            }
        }
        ::close(report[1]);
        Launch result;
        result.kept_fd = report[1];
        result.launcher_exit = wait_with_timeout(launcher);
        result.launcher_stderr = read_file(stderr_path);
        const std::string pid_line = read_line_with_timeout(report[0]);
        ::close(report[0]);
        if (!pid_line.empty()) {
            result.daemon_pid = std::stoi(pid_line);
            daemons_.push_back(result.daemon_pid);
        }
        return result;
    }

    // For daemons that exit by themselves: they are our children now, so reap them.
    int reap(pid_t pid) {
        daemons_.erase(std::remove(daemons_.begin(), daemons_.end(), pid), daemons_.end());
        return wait_with_timeout(pid);
    }

    fs::path dir_;
    std::vector<pid_t> daemons_;
};

void expect_detached_daemon(pid_t pid, int kept_fd) {
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, 0), 0) << "daemon is not running";

    // A session leader's child: its own session, not leading it, and the leader is gone.
    const pid_t sid = ::getsid(pid);
    EXPECT_NE(sid, pid);
    EXPECT_NE(sid, ::getsid(0));
    EXPECT_EQ(::getpgid(pid), sid);
    const int leader_alive = ::kill(sid, 0);
    const int leader_errno = errno;
    EXPECT_EQ(leader_alive, -1);
    EXPECT_EQ(leader_errno, ESRCH);
    EXPECT_EQ(parent_of(pid), ::getpid()) << "orphaned daemon should be re-parented to the subreaper";

    const std::string proc = "/proc/" + std::to_string(pid);
    EXPECT_EQ(read_link(proc + "/cwd"), "/");
    EXPECT_EQ(umask_of(pid), "0022");
    for (int fd = 0; fd <= 2; ++fd)
        EXPECT_EQ(read_link(proc + "/fd/" + std::to_string(fd)), "/dev/null") << "fd " << fd;
    EXPECT_EQ(open_fds(pid), (std::set<int>{0, 1, 2, kept_fd}));
}

} // namespace

TEST_F(DaemonizeTest, ReadyMakesLauncherExitZeroAndDaemonIsDetached) {
    const Launch launch = this->launch(Behaviour::Ready);
    EXPECT_EQ(launch.launcher_exit, 0);
    EXPECT_EQ(launch.launcher_stderr, "");
    expect_detached_daemon(launch.daemon_pid, launch.kept_fd);
}

TEST_F(DaemonizeTest, LauncherWithClosedStdioStillWorks) {
    const Launch launch = this->launch(Behaviour::Ready, /*close_stdio=*/true);
    EXPECT_EQ(launch.launcher_exit, 0);
    EXPECT_EQ(launch.launcher_stderr, "");
    expect_detached_daemon(launch.daemon_pid, launch.kept_fd);
}

TEST_F(DaemonizeTest, FailureIsPrintedByLauncherWithCode) {
    const Launch launch = this->launch(Behaviour::Fail);
    EXPECT_EQ(launch.launcher_exit, 3);
    EXPECT_EQ(launch.launcher_stderr, "forkd: boom\n");
    ASSERT_GT(launch.daemon_pid, 0);
    EXPECT_EQ(reap(launch.daemon_pid), 0);
}

TEST_F(DaemonizeTest, FailureKeepsOtherExitCodes) {
    const Launch launch = this->launch(Behaviour::FailCustomCode);
    EXPECT_EQ(launch.launcher_exit, 2);
    EXPECT_EQ(launch.launcher_stderr, "forkd: already running (pid 1234)\n");
    ASSERT_GT(launch.daemon_pid, 0);
    reap(launch.daemon_pid);
}

TEST_F(DaemonizeTest, FailureMessageStaysOneLine) {
    const Launch launch = this->launch(Behaviour::FailMultiline);
    EXPECT_EQ(launch.launcher_exit, 5);
    EXPECT_EQ(launch.launcher_stderr, "forkd: cannot bind 127.0.0.1:7 second line\n");
    ASSERT_GT(launch.daemon_pid, 0);
    reap(launch.daemon_pid);
}

TEST_F(DaemonizeTest, DaemonDyingBeforeReportMakesLauncherExitThree) {
    const Launch launch = this->launch(Behaviour::Die);
    EXPECT_EQ(launch.launcher_exit, 3);
    EXPECT_EQ(launch.launcher_stderr, "forkd: daemon exited during start-up\n");
    ASSERT_GT(launch.daemon_pid, 0);
    EXPECT_EQ(reap(launch.daemon_pid), 9);
}

TEST_F(DaemonizeTest, UnreportedReadinessReportsFailureOnDestruction) {
    const Launch launch = this->launch(Behaviour::DropReadiness);
    EXPECT_EQ(launch.launcher_exit, 3);
    EXPECT_EQ(launch.launcher_stderr, "forkd: daemon exited during start-up\n");
    ASSERT_GT(launch.daemon_pid, 0);
    EXPECT_EQ(reap(launch.daemon_pid), 0);
}

TEST(ReadinessTest, ForegroundReadinessIsANoOp) {
    forkd::Readiness readiness;
    EXPECT_EQ(readiness.fd(), -1);
    readiness.ready();
    readiness.failed(3, "ignored");
}

TEST(CloseInheritedFdsTest, ClosesEverythingButStdioAndKeptFds) {
    const pid_t child = ::fork();
    if (child == 0) {
        for (int fd : {3, 4, 5, 6, 7, 8, 9, 10, 63, 64, 200}) ::dup2(STDERR_FILENO, fd);
        forkd::close_inherited_fds({5, 8, 8, 64, 1});
        std::set<int> open;
        for (int fd = STDERR_FILENO; fd < 256; ++fd)
            if (::fcntl(fd, F_GETFD) >= 0) open.insert(fd);
        ::_exit(open == std::set<int>{2, 5, 8, 64} ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(CloseInheritedFdsTest, EmptyKeepListClosesAllAboveStdio) {
    const pid_t child = ::fork();
    if (child == 0) {
        for (int fd : {3, 9, 1000}) ::dup2(STDERR_FILENO, fd);
        forkd::close_inherited_fds({});
        bool ok = true;
        for (int fd : {3, 9, 1000}) ok = ok && ::fcntl(fd, F_GETFD) < 0;
        ok = ok && ::fcntl(STDERR_FILENO, F_GETFD) >= 0;
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}
