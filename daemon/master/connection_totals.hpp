// SPDX-License-Identifier: MIT
#pragma once
// The daemon's connection accounting, in one place: one function per way a connection starts or
// ends, whoever served it. Every connection that passes admission and gets a slot counts as
// accepted and ends exactly once as completed, killed or failed (a client that went away, even by
// a SIGPIPE that killed its handler, completed its connection); one refused at admission is
// counted by its reason only. A handler that could not be forked is both accepted and failed,
// and counted as refused (fork_failed) too.
#include "daemon/admission/admission.hpp"

#include <cstdint>
#include <string_view>

namespace forkd {

// Who serves a connection: the master's exec'd handler, or forkd-spawner's built-in one (room
// here for event-mode workers).
enum class ServedBy { exec, spawner };

// How a started connection ended: by its handler, or because the master ended it (the
// connection-end line's ended_by says which).
enum class Ending {
    completed,     // the handler exited
    crashed,       // the handler died of a signal nobody sent it
    timeout,       // connection-timeout
    idle,          // idle-timeout
    killed,        // forkctl kill
    shutdown,      // the daemon stopped
    spawner_exit,  // it died with forkd-spawner (PDEATHSIG)
    client_gone,   // the handler died of SIGPIPE: its client went away while it wrote
};

// The ended_by text of the log: "handler" when the handler ended it by itself.
std::string_view ending_name(Ending ending);

// How a connection the master did not end ended, from its handler's wait status: one rule for
// built-in and exec'd handlers. A built-in handler that idle-timeout ended (its exit code says
// so) ended by idle, as an exec'd one the master ends for idling; a SIGPIPE is the client's doing.
Ending ending_of_exit(ServedBy served_by, int wait_status);

class ConnectionTotals {
public:
    // Started: it passed admission, has a slot and a handler.
    void started() { ++accepted_; }
    // Passed admission and had a slot, but its handler could not be started for another reason
    // than a failed fork; or the spawner died before it could report it.
    void start_failed(std::uint64_t count = 1);
    // Refused at admission (limit, per_source), or its handler could not be forked (fork_failed).
    void refused(Refusal reason, std::uint64_t count = 1);
    void ended(Ending ending);

    std::uint64_t accepted() const { return accepted_; }
    std::uint64_t completed() const { return completed_; }
    std::uint64_t killed() const { return killed_; }
    std::uint64_t failed() const { return failed_; }
    std::uint64_t refused_limit() const { return refused_limit_; }
    std::uint64_t refused_per_source() const { return refused_per_source_; }
    std::uint64_t refused_fork() const { return refused_fork_; }
    std::uint64_t refused_proxy() const { return refused_proxy_; }
    // Refused by the admission rules (status' "rejected").
    std::uint64_t rejected() const { return refused_limit_ + refused_per_source_; }

private:
    std::uint64_t accepted_ = 0, completed_ = 0, killed_ = 0, failed_ = 0;
    std::uint64_t refused_limit_ = 0, refused_per_source_ = 0, refused_fork_ = 0, refused_proxy_ = 0;
};

} // namespace forkd
