#pragma once
// The spawner: a small process (its own binary, forkd-spawner, linking neither libsystemd nor
// Boost) that forks the built-in handlers. fork(2)'s cost grows with the forking process's
// mappings and page tables; the master's are several times the spawner's, so the master hands
// each accepted connection here (see spawner_protocol.hpp) instead of forking itself.
//
// It is the parent of every built-in handler: it reaps them and reports each exit to the master,
// which keeps all accounting, logging and policy. It dies with the master (PDEATHSIG), and its
// handlers die with it. Exec'd handlers do not come here: the master starts them with a
// vfork-style clone, whose cost does not depend on its size.
#include "common/unique_fd.hpp"

namespace forkd {

// Serves the master on `control` until the master closes it (or dies), then kills and reaps what
// is left and returns the process's exit code.
int run_spawner(UniqueFd control, UniqueFd scoreboard_memfd);

} // namespace forkd
