// SPDX-License-Identifier: MIT
#pragma once
// Classic detach with a readiness pipe: the launcher exits only once the daemon serves.
#include "common/base/error.hpp"
#include "common/base/unique_fd.hpp"

#include <string_view>
#include <vector>

namespace forkd {

// Held by the daemon until it serves (or fails to start). Destroying it unreported counts as a
// failure with exit code 3, so the launcher never hangs.
class Readiness {
public:
    Readiness() = default;                      // foreground: reports go nowhere
    explicit Readiness(UniqueFd pipe_write) : pipe_(std::move(pipe_write)) {}
    Readiness(Readiness&&) noexcept = default;
    Readiness& operator=(Readiness&&) noexcept = default;
    ~Readiness();
    void ready();                                           // launcher exits 0
    void failed(int exit_code, std::string_view message);   // launcher prints message, exits code
    int fd() const { return pipe_.get(); }

private:
    UniqueFd pipe_;
};

// Double fork, setsid, chdir("/"), umask(022), stdin/stdout/stderr on /dev/null, and every
// inherited fd closed except those in keep_fds (sd_listen_fds sockets). Returns in the daemon.
// The launcher never returns: it waits for the report, prints a failure to stderr, and exits.
// An Error when the detach could not begin (no readiness pipe, no fork): nothing has forked then.
Result<Readiness> daemonize(const std::vector<int>& keep_fds);

// Closes every fd from 3 upwards except those in keep (0, 1 and 2 are never touched). Used by
// daemonize() and by the foreground start-up, so that nothing the launcher leaked stays open.
void close_inherited_fds(const std::vector<int>& keep);

} // namespace forkd
