// SPDX-License-Identifier: MIT
#include "daemon/daemonize.hpp"

#include "common/base/error.hpp"
#include "common/base/reap.hpp"
#include "common/base/write_all.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace forkd {

namespace {

constexpr int kStartupFailure = 3;
constexpr std::string_view kDiedMessage = "daemon exited during start-up";

// A launcher that was killed must not take the daemon down with SIGPIPE: the write runs with
// SIGPIPE blocked, and a SIGPIPE it raised is consumed before the mask is restored.
void write_report(int fd, std::string_view report) {
    sigset_t pipe_only, old_mask;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
    sigset_t pending;
    sigpending(&pending);
    const bool was_pending = sigismember(&pending, SIGPIPE) == 1;

    const Status written = write_all(fd, report);
    if (!written && written.error().code == EPIPE && !was_pending) {
        const timespec zero{};
        while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
}

// One report is one line, small enough for a single atomic pipe write.
std::string format_failure(int exit_code, std::string_view message) {
    if (exit_code <= 0 || exit_code > 255) exit_code = kStartupFailure;
    std::string text(message.substr(0, PIPE_BUF - 16));
    std::replace(text.begin(), text.end(), '\n', ' ');
    return std::to_string(exit_code) + ' ' + text + '\n';
}

[[noreturn]] void launcher_exit(int code, std::string_view message) {
    if (!message.empty()) {
        const std::string line = "forkd: " + std::string(message) + "\n";
        (void)write_all(STDERR_FILENO, line);
    }
    ::_exit(code);
}

// Reads until the first newline or EOF; returns what arrived (without the newline) and
// whether a complete line was seen.
std::pair<std::string, bool> read_report(int fd) {
    std::string report;
    char buf[512];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return {report, false};
        report.append(buf, static_cast<size_t>(n));
        if (const auto nl = report.find('\n'); nl != std::string::npos) {
            report.resize(nl);
            return {report, true};
        }
    }
}

// The original process: reap the intermediate child, then wait for the daemon's verdict.
[[noreturn]] void run_launcher(pid_t intermediate, UniqueFd report_pipe) {
    reap(intermediate);
    const auto [report, complete] = read_report(report_pipe.get());
    if (!complete) launcher_exit(kStartupFailure, kDiedMessage);

    char* end = nullptr;
    const long code = std::strtol(report.c_str(), &end, 10);
    if (end == report.c_str() || code < 0 || code > 255)
        launcher_exit(kStartupFailure, "daemon sent a malformed start-up report: " + report);
    if (code == 0) ::_exit(0);
    std::string_view message(end);
    if (!message.empty() && message.front() == ' ') message.remove_prefix(1);
    launcher_exit(static_cast<int>(code), message);
}

// If the launcher was started with stdio closed, pipe2() may hand out 0, 1 or 2, which the
// daemon is about to point at /dev/null: move such an fd out of the way.
Status move_above_stdio(UniqueFd& fd) {
    if (fd.get() > STDERR_FILENO) return Status::success();
    const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (moved < 0) return system_error("cannot move pipe fd");
    fd.reset(moved);
    return Status::success();
}

struct ReportPipe {
    UniqueFd read_end, write_end;
};

Result<ReportPipe> make_report_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) return system_error("cannot create readiness pipe");
    ReportPipe pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
    if (Status moved = move_above_stdio(pipe.read_end); !moved) return moved.error();
    if (Status moved = move_above_stdio(pipe.write_end); !moved) return moved.error();
    return pipe;
}

Status redirect_stdio_to_devnull() {
    const int null_fd = ::open("/dev/null", O_RDWR | O_NOCTTY);
    if (null_fd < 0) return system_error("cannot open /dev/null");
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
        if (fd != null_fd && ::dup2(null_fd, fd) < 0) {
            const int err = errno;
            if (null_fd > STDERR_FILENO) ::close(null_fd);
            return Error{err, "cannot redirect stdio to /dev/null"};
        }
    }
    if (null_fd > STDERR_FILENO) ::close(null_fd);
    return Status::success();
}

Status become_daemon_process() {
    if (::chdir("/") < 0) return system_error("cannot change directory to /");
    ::umask(022);
    return redirect_stdio_to_devnull();
}

[[noreturn]] void fail_in_child(Readiness& readiness, const Error& error) {
    readiness.failed(kStartupFailure, error.message());
    ::_exit(kStartupFailure);
}

// Fallback for kernels without close_range(): close what /proc lists, else walk the table.
void close_fds_slowly(unsigned first, unsigned last) {
    std::vector<int> open_fds;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        const int dir_fd = ::dirfd(dir);
        while (const dirent* entry = ::readdir(dir)) {
            char* end = nullptr;
            const long fd = std::strtol(entry->d_name, &end, 10);
            if (*end != '\0' || end == entry->d_name || fd == dir_fd) continue;
            if (fd >= static_cast<long>(first) && fd <= static_cast<long>(last))
                open_fds.push_back(static_cast<int>(fd));
        }
        ::closedir(dir);
        for (int fd : open_fds) ::close(fd);
        return;
    }
    long max_fd = ::sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > 1 << 20) max_fd = 1 << 20;
    for (long fd = first; fd < max_fd && fd <= static_cast<long>(last); ++fd)
        ::close(static_cast<int>(fd));
}

void close_fd_range(unsigned first, unsigned last) {
    if (first > last) return;
    if (::close_range(first, last, 0) == 0) return;
    close_fds_slowly(first, last);
}

} // namespace

Readiness::~Readiness() {
    if (pipe_) failed(kStartupFailure, kDiedMessage);
}

void Readiness::ready() {
    if (!pipe_) return;
    write_report(pipe_.get(), "0\n");
    pipe_.reset();
}

void Readiness::failed(int exit_code, std::string_view message) {
    if (!pipe_) return;
    write_report(pipe_.get(), format_failure(exit_code, message));
    pipe_.reset();
}

void close_inherited_fds(const std::vector<int>& keep) {
    std::vector<int> kept;
    for (int fd : keep)
        if (fd > STDERR_FILENO) kept.push_back(fd);
    std::sort(kept.begin(), kept.end());
    kept.erase(std::unique(kept.begin(), kept.end()), kept.end());

    // close_range() cannot skip fds, so close the gaps between the kept ones.
    unsigned first = STDERR_FILENO + 1;
    for (int fd : kept) {
        if (static_cast<unsigned>(fd) > first) close_fd_range(first, static_cast<unsigned>(fd) - 1);
        first = static_cast<unsigned>(fd) + 1;
    }
    close_fd_range(first, ~0U);
}

Result<Readiness> daemonize(const std::vector<int>& keep_fds) {
    auto pipe = make_report_pipe();
    if (!pipe) return pipe.error();
    std::fflush(nullptr);  // buffered output must not be written twice, by launcher and daemon

    const pid_t intermediate = ::fork();
    if (intermediate < 0) return system_error("cannot fork");
    if (intermediate > 0) {
        pipe->write_end.reset();
        run_launcher(intermediate, std::move(pipe->read_end));
    }

    pipe->read_end.reset();
    Readiness readiness(std::move(pipe->write_end));
    if (::setsid() < 0) fail_in_child(readiness, system_error("setsid failed"));
    const pid_t daemon_pid = ::fork();
    if (daemon_pid < 0) fail_in_child(readiness, system_error("cannot fork"));
    if (daemon_pid > 0) ::_exit(0);  // the session leader goes: the daemon can never get a tty

    if (const Status became = become_daemon_process(); !became)
        fail_in_child(readiness, became.error());
    std::vector<int> keep = keep_fds;
    keep.push_back(readiness.fd());
    close_inherited_fds(keep);
    return readiness;
}

} // namespace forkd
