// SPDX-License-Identifier: MIT
#pragma once
// Everything an exec'd handler needs that does not depend on the connection, prepared once when
// the configuration is loaded (user and group looked up, argv and base environment built), so
// the per-connection path does no lookups and no parsing.
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
    std::vector<std::string> argv;
    std::vector<std::string> base_env;          // env = ..., pass-env = ... (from the daemon's env)
    std::optional<ExecIdentity> identity;       // nullopt: keep the daemon's
    mode_t umask = 022;
    std::string chdir = "/";
    ResourceLimits rlimits;
};

// Throws ConfigError naming the option ("option 'user': no such user 'x'", "option 'exec': ...").
ExecPlan build_exec_plan(const Config& config);

} // namespace forkd
