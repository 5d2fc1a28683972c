// SPDX-License-Identifier: MIT
// forkd-worker: serves event-mode connections on behalf of the master (worker_loop.hpp).
//   forkd-worker MASTER_PID
// forkd starts it as it starts forkd-spawner: its end of the control socket on fd 3, the
// scoreboard's memfd on fd 4. It is not meant to be run by hand.
#include "daemon/core/child_setup.hpp"
#include "daemon/spawner/spawner_protocol.hpp"
#include "daemon/worker/worker_loop.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdio>
#include <cstring>

namespace {

bool is_seqpacket_socket(int fd) {
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
}

pid_t parse_pid(const char* text) {
    pid_t pid = 0;
    const char* end = text + std::strlen(text);
    auto [ptr, ec] = std::from_chars(text, end, pid);
    return (ec == std::errc() && ptr == end && pid > 0) ? pid : 0;
}

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
    using namespace forkd;
    const pid_t master = argc == 2 ? parse_pid(argv[1]) : 0;
    if (!master || !is_seqpacket_socket(spawner::control_fd) ||
        fcntl(spawner::scoreboard_fd, F_GETFD) < 0) {
        std::fprintf(stderr, "forkd-worker: started by forkd only (see forkd(8))\n");
        return 2;
    }
    // Lives and dies with the master: a terminal's SIGINT or a stray SIGTERM is the master's.
    for (int signo : {SIGPIPE, SIGINT, SIGHUP, SIGTERM}) signal(signo, SIG_IGN);
    if (!die_with_parent(master)) return 1;
    for (int fd : {spawner::control_fd, spawner::scoreboard_fd}) fcntl(fd, F_SETFD, FD_CLOEXEC);
    raise_descriptor_limit();
    return run_worker(UniqueFd(spawner::control_fd), UniqueFd(spawner::scoreboard_fd));
}
