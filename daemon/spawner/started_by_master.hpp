// SPDX-License-Identifier: MIT
#pragma once
// How a process the master runs over the spawner protocol (forkd-spawner, forkd-worker) starts:
// argv is PROGRAM MASTER_PID, its control socket is on spawner::control_fd and the scoreboard's
// memfd on spawner::scoreboard_fd. One start-up for both, so they cannot drift.
#include "common/base/unique_fd.hpp"

#include <sys/types.h>

#include <optional>

namespace forkd {

class Scoreboard;

// The master's pid, or nullopt after a one-line message on stderr naming `program`.
std::optional<pid_t> master_of(int argc, char** argv, const char* program);

// The protocol's two descriptors stay the process's own: its children do not inherit them.
void keep_protocol_fds_from_children();

// A process's loop: serves the master on `control` (non-blocking) with the scoreboard mapped,
// until the master closes it or dies; returns the process's exit code.
using ServeMaster = int (*)(UniqueFd control, Scoreboard& board);

// main() of such a process: checks it was started by the master (exit 2 if not), dies with the
// master, keeps the protocol's descriptors from its children, makes the control socket
// non-blocking and maps the scoreboard, then runs `serve`. A failure on the way, or an exception
// out of `serve`, is one line on stderr naming `program`, and exit 1.
int serve_master(int argc, char** argv, const char* program, ServeMaster serve);

} // namespace forkd
