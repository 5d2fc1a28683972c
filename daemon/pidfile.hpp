// SPDX-License-Identifier: MIT
#pragma once
// A pidfile locked for the daemon's whole life (flock on an O_CLOEXEC fd). A stale file left by
// a killed daemon is unlocked, so it never blocks a start; it is simply rewritten.
#include "common/base/run_dir.hpp"
#include "common/base/unique_fd.hpp"

#include <sys/types.h>
#include <stdexcept>
#include <string>

namespace forkd {

class AlreadyRunning : public std::runtime_error {
public:
    explicit AlreadyRunning(pid_t pid);
    pid_t pid;
};

class Pidfile {
public:
    // Creates the parent directory if missing (0755) and refuses one forkd cannot trust
    // (common/base/run_dir.hpp), opens the file in it without following a symbolic link
    // (O_NOFOLLOW, mode 0644), locks, truncates, writes "PID\n". Throws AlreadyRunning when
    // another live process holds the lock, std::system_error for a failed system call, and
    // std::runtime_error for a refusal (an untrusted directory, a symlink as the pidfile).
    static Pidfile acquire(const std::string& path);
    Pidfile(Pidfile&&) noexcept = default;
    Pidfile& operator=(Pidfile&&) noexcept = default;
    ~Pidfile() = default;  // the lock goes with the fd; the file stays unless remove() is called
    // Clean stop: unlink while still holding the lock.
    void remove();
    const std::string& path() const { return run_.path; }
    // The locked descriptor (a live upgrade hands it, and so the lock, to the new image).
    int fd() const { return fd_.get(); }
    // The new image of a live upgrade: the pidfile the old one held, lock and all.
    static Pidfile adopt(const std::string& path, UniqueFd fd);

private:
    Pidfile(RunPath run, UniqueFd fd) : run_(std::move(run)), fd_(std::move(fd)) {}
    RunPath run_;  // the checked directory, held open so remove() unlinks in it
    UniqueFd fd_;
};

} // namespace forkd
