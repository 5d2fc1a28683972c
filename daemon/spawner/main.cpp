// SPDX-License-Identifier: MIT
// forkd-spawner: forks forkd's built-in handlers on behalf of the master (see spawner.hpp).
//   forkd-spawner MASTER_PID
// forkd starts it with its end of the control socket on fd 3 and the scoreboard's memfd on fd 4;
// it is not meant to be run by hand.
#include "daemon/core/child_setup.hpp"
#include "daemon/spawner/spawner_loop.hpp"
#include "daemon/spawner/spawner_protocol.hpp"
#include "daemon/spawner/started_by_master.hpp"

#include <optional>

int main(int argc, char** argv) {
    using namespace forkd;
    const std::optional<pid_t> master = master_of(argc, argv, "forkd-spawner");
    if (!master) return 2;
    // Dies with the master, and so do the handlers (they die with the spawner).
    if (!die_with_parent(*master)) return 1;
    keep_protocol_fds_from_children();
    return run_spawner(UniqueFd(spawner::control_fd), UniqueFd(spawner::scoreboard_fd));
}
