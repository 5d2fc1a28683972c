// SPDX-License-Identifier: MIT
#include "daemon/pidfile.hpp"

#include "common/base/error.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace forkd {

namespace {

// The start-up boundary: a failure here is std::system_error (exit 3), as before the shape.
// A refusal that is no system call's failure (code 0) is a plain runtime_error.
[[noreturn]] void throw_error(const Error& error) {
    if (error.code == 0) throw std::runtime_error(error.context);
    throw std::system_error(error.code, std::generic_category(), error.context);
}

template <class T>
T or_throw(Result<T> result) {
    if (!result) throw_error(result.error());
    return std::move(*result);
}

// O_NOFOLLOW: a symbolic link planted as the pidfile is refused, never followed (ELOOP).
Result<UniqueFd> open_pidfile(const RunPath& run) {
    UniqueFd fd(::openat(run.dir.get(), run.name.c_str(),
                         O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0644));
    if (!fd && errno == ELOOP)
        return failure("cannot open pidfile " + run.path + ": it is a symbolic link (refusing to follow it)");
    if (!fd) return system_error("cannot open pidfile " + run.path);
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return system_error("cannot stat pidfile " + run.path);
    if (!S_ISREG(st.st_mode)) return failure("pidfile " + run.path + " is not a regular file");
    return fd;
}

// false when another process holds the lock.
Result<bool> try_lock(const UniqueFd& fd, const std::string& path) {
    for (;;) {
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return true;
        if (errno == EWOULDBLOCK) return false;
        if (errno != EINTR) return system_error("cannot lock pidfile " + path);
    }
}

pid_t read_pid(const UniqueFd& fd) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    return static_cast<pid_t>(std::strtol(buf, nullptr, 10));
}

// The holder may have locked but not yet written its pid: give it a moment.
pid_t read_holder_pid(const UniqueFd& fd) {
    for (int attempt = 0; attempt < 20; ++attempt) {
        if (const pid_t pid = read_pid(fd); pid > 0) return pid;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return 0;
}

// A previous owner may have unlinked the file (remove()) between our open and our lock:
// then we hold a lock on an orphaned inode and must start over.
Result<bool> still_linked(const UniqueFd& fd, const RunPath& run) {
    const std::string& path = run.path;
    struct stat by_fd{}, by_path{};
    if (::fstat(fd.get(), &by_fd) < 0) return system_error("cannot stat pidfile " + path);
    if (::fstatat(run.dir.get(), run.name.c_str(), &by_path, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return false;
        return system_error("cannot stat pidfile " + path);
    }
    return by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
}

Status write_pid(const UniqueFd& fd, const std::string& path) {
    if (::ftruncate(fd.get(), 0) < 0) return system_error("cannot truncate pidfile " + path);
    const std::string text = std::to_string(::getpid()) + "\n";
    ssize_t n;
    do {
        n = ::pwrite(fd.get(), text.data(), text.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return system_error("cannot write pidfile " + path);
    if (static_cast<size_t>(n) != text.size()) return Error{EIO, "short write to pidfile " + path};
    return Status::success();
}

} // namespace

AlreadyRunning::AlreadyRunning(pid_t pid)
    : std::runtime_error("already running (pid " + std::to_string(pid) + ")"), pid(pid) {}

Pidfile Pidfile::acquire(const std::string& path) {
    RunPath run = or_throw(open_run_path(path, CreateMissing::yes));
    for (;;) {
        UniqueFd fd = or_throw(open_pidfile(run));
        if (!or_throw(try_lock(fd, path))) throw AlreadyRunning(read_holder_pid(fd));
        if (!or_throw(still_linked(fd, run))) continue;
        if (Status written = write_pid(fd, path); !written) throw_error(written.error());
        return Pidfile(std::move(run), std::move(fd));
    }
}

// The lock is held by the open file description, which the execve kept: nothing to take again.
Pidfile Pidfile::adopt(const std::string& path, UniqueFd fd) {
    RunPath run = or_throw(open_run_path(path, CreateMissing::no));
    return Pidfile(std::move(run), std::move(fd));
}

void Pidfile::remove() {
    if (!fd_) return;
    // Best effort at stop (a missing file is already the goal), in the directory we checked.
    ::unlinkat(run_.dir.get(), run_.name.c_str(), 0);
}

} // namespace forkd
