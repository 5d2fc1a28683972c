// SPDX-License-Identifier: MIT
#include "daemon/master/connection_totals.hpp"

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
    }
    return "handler";
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
    case Refusal::none: break;
    }
}

// What the master ended was killed; a handler that died of a signal by itself, or with the
// spawner, failed.
void ConnectionTotals::ended(Ending ending) {
    switch (ending) {
    case Ending::completed: ++completed_; break;
    case Ending::crashed:
    case Ending::spawner_exit: ++failed_; break;
    case Ending::timeout:
    case Ending::idle:
    case Ending::killed:
    case Ending::shutdown: ++killed_; break;
    }
}

} // namespace forkd
