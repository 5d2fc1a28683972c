// SPDX-License-Identifier: MIT
#pragma once
// Waiting for one child of ours to end.
#include <sys/types.h>

namespace forkd {

// Blocks until child PID has ended and is reaped, through EINTR; its wait status (0 when
// waitpid failed otherwise: PID was not our child, or was reaped already).
int reap(pid_t pid);

} // namespace forkd
