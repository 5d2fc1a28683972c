// SPDX-License-Identifier: MIT
// forkd-worker: serves event-mode connections on behalf of the master (worker_loop.hpp).
//   forkd-worker MASTER_PID
// forkd starts it as it starts forkd-spawner: its end of the control socket on fd 3, the
// scoreboard's memfd on fd 4. It is not meant to be run by hand.
#include "daemon/spawner/started_by_master.hpp"
#include "daemon/worker/worker_loop.hpp"

#include <signal.h>
#include <sys/resource.h>

namespace {

// A descriptor per connection: as many as the hard limit allows.
void raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

} // namespace

int main(int argc, char** argv) {
    // Lives and dies with the master: a terminal's SIGINT or a stray SIGTERM is the master's.
    for (int signo : {SIGPIPE, SIGINT, SIGHUP, SIGTERM}) signal(signo, SIG_IGN);
    raise_descriptor_limit();
    return forkd::serve_master(argc, argv, "forkd-worker", forkd::run_worker);
}
