// SPDX-License-Identifier: MIT
#include "daemon/spawner/started_by_master.hpp"

#include "daemon/spawner/spawner_protocol.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdio>
#include <cstring>

namespace forkd {
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

std::optional<pid_t> master_of(int argc, char** argv, const char* program) {
    const pid_t master = argc == 2 ? parse_pid(argv[1]) : 0;
    if (!master || !is_seqpacket_socket(spawner::control_fd) || fcntl(spawner::scoreboard_fd, F_GETFD) < 0) {
        std::fprintf(stderr, "%s: started by forkd only (see forkd(8))\n", program);
        return std::nullopt;
    }
    return master;
}

void keep_protocol_fds_from_children() {
    for (int fd : {spawner::control_fd, spawner::scoreboard_fd}) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

} // namespace forkd
