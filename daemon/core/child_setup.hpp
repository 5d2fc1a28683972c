// SPDX-License-Identifier: MIT
#pragma once
// What every handler child does first, in the child between fork and the handler. All of it is
// async-signal-safe (plain syscalls), so it may also run in a vfork-style child.
#include <sys/types.h>

namespace forkd {

// A process that forks handlers (the master, the spawner), once its signal set-up is done and
// before its first child: notes which signals have a disposition other than the default, so that
// children reset those few rather than making 64 syscalls per connection.
void record_signal_dispositions();
// Default dispositions (raw rt_sigaction, so glibc's reserved signals are reset too and no
// wrapper state is touched): the master's ignored SIGPIPE must not leak. Resets every signal
// unless record_signal_dispositions() ran.
void reset_signal_dispositions();
// An empty signal mask: the master blocks the signals its loop reads through signalfd.
void clear_signal_mask();
// Both of the above.
void reset_signal_state();
// The child dies with its parent (PR_SET_PDEATHSIG SIGKILL); false if the parent is already gone.
bool die_with_parent(pid_t parent_pid);
// Connection on fds 0 and 1; every fd above 2 closed. False on failure.
bool connection_to_stdio(int connection_fd);

} // namespace forkd
