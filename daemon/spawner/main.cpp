// SPDX-License-Identifier: MIT
// forkd-spawner: forks forkd's built-in handlers on behalf of the master (see spawner.hpp).
//   forkd-spawner MASTER_PID
// forkd starts it with its end of the control socket on fd 3 and the scoreboard's memfd on fd 4;
// it is not meant to be run by hand.
#include "daemon/core/child_setup.hpp"
#include "daemon/spawner/spawner_loop.hpp"
#include "daemon/spawner/spawner_protocol.hpp"

#include <fcntl.h>
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

} // namespace

int main(int argc, char** argv) {
    using namespace forkd;
    const pid_t master = argc == 2 ? parse_pid(argv[1]) : 0;
    if (!master || !is_seqpacket_socket(spawner::control_fd) ||
        fcntl(spawner::scoreboard_fd, F_GETFD) < 0) {
        std::fprintf(stderr, "forkd-spawner: started by forkd only (see forkd(8))\n");
        return 2;
    }
    // Dies with the master, and so do the handlers (they die with the spawner).
    if (!die_with_parent(master)) return 1;
    for (int fd : {spawner::control_fd, spawner::scoreboard_fd}) fcntl(fd, F_SETFD, FD_CLOEXEC);
    return run_spawner(UniqueFd(spawner::control_fd), UniqueFd(spawner::scoreboard_fd));
}
