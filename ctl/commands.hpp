// SPDX-License-Identifier: MIT
#pragma once
// Carrying out one parsed forkctl invocation against the daemon; returns the exit code.
#include "ctl/command_line.hpp"

#include <iosfwd>
#include <string>

namespace forkd::ctl {

struct Output {
    std::ostream& out;
    std::ostream& err;
    bool terminal = false;  // stdout is a terminal: drain --wait redraws one line
};

// The socket path an invocation talks to: -s, else the default of -i NAME (or of no instance).
std::string socket_path(const Invocation& invocation);

// Throws ClientError for connection failures (the caller prints it and exits with its code).
int execute(const Invocation& invocation, Output& output);

// The commands that are more than one request and one reply (rows of ctl/command_table.cpp).
// drain, and with --wait poll status until no connection is active.
int run_drain(const Invocation& invocation, Output& output);
// stop, then wait until forkd has exited.
int run_stop(const Invocation& invocation, Output& output);
// upgrade, then poll status until the new image answers (same pid, the next generation).
int run_upgrade(const Invocation& invocation, Output& output);

// The whole of forkctl: parse, execute, print one-line errors. Returns the exit code.
int run_forkctl(int argc, const char* const* argv);

} // namespace forkd::ctl
