#pragma once
// What every handler child does first, in the child between fork and the handler. All of it is
// async-signal-safe (plain syscalls), so it may also run in a vfork-style child.
#include <sys/types.h>

namespace forkd {

// Default dispositions for every signal and an empty mask: the master's blocked set (the
// signals its loop reads through signalfd) and its ignored SIGPIPE must not leak.
void reset_signal_state();
// The child dies with the master (PR_SET_PDEATHSIG SIGKILL); false if the master is already gone.
bool die_with_master(pid_t master_pid);
// Connection on fds 0 and 1; every fd above 2 closed. False on failure.
bool connection_to_stdio(int connection_fd);

} // namespace forkd
