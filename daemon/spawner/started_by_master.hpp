// SPDX-License-Identifier: MIT
#pragma once
// How a process the master runs over the spawner protocol (forkd-spawner, forkd-worker) knows
// that it was: argv is PROGRAM MASTER_PID, its control socket is on spawner::control_fd and the
// scoreboard's memfd on spawner::scoreboard_fd. One check for both, so they cannot drift.
#include <sys/types.h>

#include <optional>

namespace forkd {

// The master's pid, or nullopt after a one-line message on stderr naming `program`.
std::optional<pid_t> master_of(int argc, char** argv, const char* program);

// The protocol's two descriptors stay the process's own: its children do not inherit them.
void keep_protocol_fds_from_children();

} // namespace forkd
