// SPDX-License-Identifier: MIT
#pragma once
// A pidfile locked for the daemon's whole life (flock on an O_CLOEXEC fd). A stale file left by
// a killed daemon is unlocked, so it never blocks a start; it is simply rewritten.
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
    // Creates the parent directory if missing (0755), locks, truncates, writes "PID\n".
    // Throws AlreadyRunning when another live process holds the lock, std::system_error otherwise.
    static Pidfile acquire(const std::string& path);
    Pidfile(Pidfile&&) noexcept = default;
    Pidfile& operator=(Pidfile&&) noexcept = default;
    ~Pidfile() = default;  // the lock goes with the fd; the file stays unless remove() is called
    // Clean stop: unlink while still holding the lock.
    void remove();
    const std::string& path() const { return path_; }

private:
    Pidfile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
    std::string path_;
    UniqueFd fd_;
};

} // namespace forkd
