// SPDX-License-Identifier: MIT
#pragma once
// forkd-worker's loop: one libevent event base holding the master's socket (the spawner
// protocol, daemon/spawner/spawner_protocol.hpp), the listening sockets the master handed over,
// and every connection it serves (event_connection.hpp). It admits as forkd-spawner does
// (daemon/admission), claims a scoreboard slot per connection, counts its bytes into the slot,
// and reports each start, end and refusal to the master, which logs and times them.
#include "common/base/unique_fd.hpp"

namespace forkd {

class Scoreboard;

// Runs until the master closes the socket; returns the exit code.
int run_worker(UniqueFd control, Scoreboard& board);

} // namespace forkd
