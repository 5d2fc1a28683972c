// SPDX-License-Identifier: MIT
#pragma once
// The daemon's connection accounting, in one place: one function per way a connection starts or
// ends, whoever served it. Every connection that passes admission and gets a slot counts as
// accepted and ends exactly once as completed, killed or failed (a client that went away, even by
// a SIGPIPE that killed its handler, completed its connection); one refused at admission is
// counted by its reason only. A handler that could not be forked is both accepted and failed,
// and counted as refused (fork_failed) too.
#include "daemon/admission/admission.hpp"

#include <array>
#include <cstdint>
#include <iterator>
#include <string_view>

namespace forkd {

// exec: the master's own child; spawner: forkd-spawner's child; worker: inside forkd-worker.
enum class ServedBy { exec, spawner, worker };

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
    worker_exit,   // its forkd-worker died (event mode)
    client_gone,   // the handler died of SIGPIPE: its client went away while it wrote
    backend,       // a proxy could not reach (or lost) its proxy-to: its exit code says why
};

// The ended_by text of the log: "handler" when the handler ended it by itself.
std::string_view ending_name(Ending ending);

// How a connection the master did not end ended, from its handler's wait status: one rule for
// built-in and exec'd handlers. A built-in handler that idle-timeout ended (its exit code says
// so) ended by idle, as an exec'd one the master ends for idling; a SIGPIPE is the client's doing.
// A proxy child's failure codes (daemon/proxy/proxy_exit.hpp) end it by its backend: failed.
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
    std::uint64_t refused(Refusal reason) const { return refused_[std::size_t(reason)]; }
    std::uint64_t refused_limit() const { return refused(Refusal::limit); }
    std::uint64_t refused_per_source() const { return refused(Refusal::per_source); }
    std::uint64_t refused_fork() const { return refused(Refusal::fork_failed); }
    // Refused by the admission rules, every reason but fork_failed (status' "rejected").
    std::uint64_t rejected() const;

private:
    std::uint64_t accepted_ = 0, completed_ = 0, killed_ = 0, failed_ = 0;
    std::array<std::uint64_t, std::size(refusal_reasons) + 1> refused_{};  // by Refusal
};

} // namespace forkd
