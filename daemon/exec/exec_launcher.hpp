// SPDX-License-Identifier: MIT
#pragma once
// Starts one exec'd handler for one connection: vfork-style spawn (clone CLONE_VM|CLONE_VFORK),
// the connection on fds 0 and 1, fd 2 a pipe back to the master, nothing else open, default
// signal dispositions and empty mask, identity dropped (groups, gid, uid, then verified), rlimits,
// umask, chdir, PR_SET_PDEATHSIG, UCSPI environment. Called by the master; never blocks.
#include "common/base/unique_fd.hpp"
#include "daemon/core/connection_info.hpp"
#include "daemon/exec/exec_plan.hpp"

#include <sys/types.h>
#include <string>
#include <variant>

namespace forkd {

struct SpawnedHandler {
    pid_t pid;
    UniqueFd stderr_read;  // read end of the handler's stderr (O_CLOEXEC|O_NONBLOCK)
};

// The error is one line: "setuid(1000): Operation not permitted", "execve /bin/x: No such file".
// A failure after the child started is reported like this too (the child is reaped here).
std::variant<SpawnedHandler, std::string> spawn_exec_handler(const ExecPlan& plan,
                                                             const ConnectionInfo& connection,
                                                             int connection_fd);

} // namespace forkd
