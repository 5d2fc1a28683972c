// SPDX-License-Identifier: MIT
// forkd-spawner: forks forkd's built-in handlers on behalf of the master (see spawner.hpp).
//   forkd-spawner MASTER_PID
// forkd starts it with its end of the control socket on fd 3 and the scoreboard's memfd on fd 4;
// it is not meant to be run by hand.
#include "daemon/spawner/spawner_loop.hpp"
#include "daemon/spawner/started_by_master.hpp"

// It dies with the master, and the handlers die with it.
int main(int argc, char** argv) { return forkd::serve_master(argc, argv, "forkd-spawner", forkd::run_spawner); }
