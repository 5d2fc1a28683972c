// SPDX-License-Identifier: MIT
#pragma once
// forkd's run() shape: logging, detach (or not), signals, pidfile, bind, ready, loop, tear down.
#include "common/config/config.hpp"

namespace forkd {

// Exit codes of the contract.
enum ExitCode { exit_clean = 0, exit_config = 1, exit_running = 2, exit_startup = 3 };

int run_daemon(const CommandLine& command_line, Config config);

} // namespace forkd
