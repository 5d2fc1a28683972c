// SPDX-License-Identifier: MIT
#pragma once
// forkd's run() shape: logging, detach (or not), signals, pidfile, bind, ready, loop, tear down.
#include "common/config/config.hpp"
#include "daemon/master/manager.hpp"

namespace forkd {

// Exit codes of the contract.
enum ExitCode { exit_clean = 0, exit_config = 1, exit_running = 2, exit_startup = 3 };

// origin: what a live upgrade re-executes. state_fd >= 0: this is a live upgrade's new image
// (FORKD_UPGRADE_STATE), which takes over from the record instead of starting afresh; a record
// it cannot read is a logged restart in place (restart_after_rejected_state).
int run_daemon(const CommandLine& command_line, Config config, Manager::Origin origin = {},
               int state_fd = -1);

} // namespace forkd
