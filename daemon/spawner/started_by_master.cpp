// SPDX-License-Identifier: MIT
#include "daemon/spawner/started_by_master.hpp"

#include "daemon/core/child_setup.hpp"
#include "daemon/core/scoreboard.hpp"
#include "daemon/spawner/spawner_protocol.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>

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

bool set_non_blocking(int fd) {
    const int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
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

int serve_master(int argc, char** argv, const char* program, ServeMaster serve) {
    const std::optional<pid_t> master = master_of(argc, argv, program);
    if (!master) return 2;
    // Dies with the master, and so does whatever it runs (that dies with it in turn).
    if (!die_with_parent(*master)) return 1;
    keep_protocol_fds_from_children();
    UniqueFd control(spawner::control_fd);
    UniqueFd scoreboard_memfd(spawner::scoreboard_fd);
    if (!set_non_blocking(control.get())) {
        std::fprintf(stderr, "%s: control socket: %s\n", program, std::strerror(errno));
        return 1;
    }
    try {
        Scoreboard board(std::move(scoreboard_memfd));
        return serve(std::move(control), board);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 1;
    }
}

} // namespace forkd
