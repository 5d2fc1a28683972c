// SPDX-License-Identifier: MIT
#pragma once
// The spawner: a small process (its own binary, forkd-spawner, linking neither libsystemd nor
// Boost) that accepts the connections of the built-in handlers and forks them. fork(2)'s cost
// grows with the forking process's mappings and page tables; the master's are several times the
// spawner's, and a connection that never passes through the master costs it no wake-up.
//
// The master configures it (listening sockets, handler, limits; see spawner_protocol.hpp). It
// admits each connection by the same rules as the master's Admission, claims its scoreboard
// slot, forks the handler, reaps it and reports the start, the exit or the refusal; the master
// keeps the timers, the logs and the totals. It dies with the master (PDEATHSIG), and its
// handlers die with it. Exec'd handlers do not come here: the master accepts them and starts
// them with a vfork-style clone, whose cost does not depend on its size.
#include "common/base/unique_fd.hpp"

namespace forkd {

class Scoreboard;

// Serves the master on `control` until the master closes it (or dies), then kills and reaps what
// is left and returns the process's exit code.
int run_spawner(UniqueFd control, Scoreboard& board);

} // namespace forkd
