// SPDX-License-Identifier: MIT
#pragma once
// Everything a handler needs that does not depend on the connection, prepared once when the
// configuration is loaded (user and group looked up, argv and base environment built), so the
// per-connection path does no lookups and no parsing. Building it is also the load-time check
// that `forkd -t`, the start and a reload share: whatever would make every connection fail
// (an unknown user, a missing chdir, an identity an unprivileged forkd cannot take, a missing
// #! interpreter) is refused here, with the FILE:LINE of the option. Built-in handlers use only
// the identity.
#include "common/config/config.hpp"

#include <sys/types.h>
#include <optional>
#include <string>
#include <vector>

namespace forkd {

struct ExecIdentity {
    uid_t uid;
    gid_t gid;
    std::vector<gid_t> groups;  // supplementary groups of the user (or just gid)
};

struct ExecPlan {
    std::vector<std::string> argv;              // empty for a built-in handler
    std::string interpreter;                    // the #! line's program, "" when none
    std::vector<std::string> base_env;          // env = ..., pass-env = ... (from the daemon's env)
    std::optional<ExecIdentity> identity;       // nullopt: keep the daemon's
    mode_t umask = 022;
    std::string chdir = "/";
    ResourceLimits rlimits;
    // Settings that load but do nothing ("FILE:LINE: option 'idle-timeout': ..."), to be logged.
    std::vector<std::string> warnings;
};

// Throws ConfigError naming where and the option ("forkd.conf:3: option 'user': no such user
// 'x'"; the place is left out when the Config does not know it).
ExecPlan build_exec_plan(const Config& config);

} // namespace forkd
