// SPDX-License-Identifier: MIT
#pragma once
// Starts one exec'd handler for one connection: vfork-style spawn (clone CLONE_VM|CLONE_VFORK),
// the connection on fds 0 and 1, fd 2 a pipe back to the master, nothing else open, default
// signal dispositions and empty mask, identity dropped (groups, gid, uid, then verified), rlimits,
// umask, chdir, PR_SET_PDEATHSIG, UCSPI environment. Called by the master; never blocks.
#include "common/base/error.hpp"
#include "common/base/unique_fd.hpp"
#include "daemon/core/connection_info.hpp"
#include "daemon/exec/exec_plan.hpp"

#include <sys/types.h>
#include <variant>

namespace forkd {

// Descriptors the master opens for one exec'd connection besides the accepted socket: the two
// ends of the stderr pipe and the dup it keeps for TCP_INFO.
inline constexpr int exec_descriptors_per_connection = 3;

struct SpawnedHandler {
    pid_t pid;
    UniqueFd stderr_read;  // read end of the handler's stderr (O_CLOEXEC|O_NONBLOCK)
};

// Why no handler started. The error's message is one line: "setuid(1000): Operation not
// permitted", "execve /bin/x: No such file or directory". fork_failed: the clone itself failed
// (EAGAIN at RLIMIT_NPROC or the pid limit), which the master counts as a refusal, as it does the
// spawner's failed fork.
struct SpawnFailure {
    Error error;
    bool fork_failed = false;
};

// A failure after the child started is reported like the others (the child is reaped here).
std::variant<SpawnedHandler, SpawnFailure> spawn_exec_handler(const ExecPlan& plan,
                                                              const ConnectionInfo& connection,
                                                              int connection_fd);

} // namespace forkd
