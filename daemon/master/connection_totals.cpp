// SPDX-License-Identifier: MIT
#include "daemon/master/connection_totals.hpp"

#include "daemon/handlers/builtin_handlers.hpp"

#include <signal.h>
#include <sys/wait.h>

namespace forkd {

std::string_view ending_name(Ending ending) {
    switch (ending) {
    case Ending::completed:
    case Ending::crashed: return "handler";
    case Ending::timeout: return "timeout";
    case Ending::idle: return "idle";
    case Ending::killed: return "killed";
    case Ending::shutdown: return "shutdown";
    case Ending::spawner_exit: return "spawner-exit";
    case Ending::client_gone: return "client";
    }
    return "handler";
}

Ending ending_of_exit(ServedBy served_by, int wait_status) {
    if (WIFSIGNALED(wait_status))
        return WTERMSIG(wait_status) == SIGPIPE ? Ending::client_gone : Ending::crashed;
    if (served_by == ServedBy::spawner && WIFEXITED(wait_status) &&
        WEXITSTATUS(wait_status) == builtin_exit_idle)
        return Ending::idle;
    return Ending::completed;
}

void ConnectionTotals::start_failed(std::uint64_t count) {
    accepted_ += count;
    failed_ += count;
}

void ConnectionTotals::refused(Refusal reason, std::uint64_t count) {
    switch (reason) {
    case Refusal::limit: refused_limit_ += count; break;
    case Refusal::per_source: refused_per_source_ += count; break;
    case Refusal::fork_failed:
        refused_fork_ += count;
        start_failed(count);
        break;
    case Refusal::proxy: refused_proxy_ += count; break;
    case Refusal::none: break;
    }
}

// What the master ended (or idle-timeout, for a built-in handler) was killed; a handler that
// died of a signal by itself, or with the spawner, failed; one whose client went away completed.
void ConnectionTotals::ended(Ending ending) {
    switch (ending) {
    case Ending::completed:
    case Ending::client_gone: ++completed_; break;
    case Ending::crashed:
    case Ending::spawner_exit: ++failed_; break;
    case Ending::timeout:
    case Ending::idle:
    case Ending::killed:
    case Ending::shutdown: ++killed_; break;
    }
}

} // namespace forkd
