// SPDX-License-Identifier: MIT
#pragma once
// Starting and reaping the harness's own child processes (forkd, forkctl, tools): the plumbing
// Daemon and run() share. Not for tests: they use those two.
#include "common/base/unique_fd.hpp"
#include "harness/wait.hpp"

#include <sys/resource.h>
#include <sys/types.h>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace forkd::test {

// Everything the child needs is prepared before fork: after it only async-signal-safe calls.
struct ExecPlan {
    std::vector<std::string> argv, envp;
    std::vector<char*> argv_ptrs, envp_ptrs;
    ExecPlan(std::vector<std::string> a, std::vector<std::string> e);
};

// Our environment without the names in remove, with overrides set.
std::vector<std::string> build_env(const std::map<std::string, std::string>& overrides,
                                   const std::vector<std::string>& remove = {});

struct ChildIo {
    int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;  // -1: /dev/null
    std::optional<rlim_t> nofile;                        // RLIMIT_NOFILE set before exec
};

// fork + exec (PATH search); returns the pid. The child closes every other fd.
pid_t spawn(const ExecPlan& plan, const ChildIo& io);

// Non-blocking reap of our own child: its exit status (128+signal if killed) once it has exited.
std::optional<int> try_reap(pid_t pid);
std::optional<int> reap_within(pid_t pid, Millis timeout);

// An append-only file for a child's stdout/stderr.
UniqueFd open_output(const std::string& path);

} // namespace forkd::test
