// SPDX-License-Identifier: MIT
// forkd_bench_floor: the leanest fork-per-connection servers, as a floor for forkd's benchmarks.
// No event loop, no limits, no logging, no shared state: block in accept, start one process per
// connection, reap what has exited, repeat. Whatever forkd adds costs relative to this.
//
//   forkd_bench_floor [--host 127.0.0.1] --port P --mode echo           fork; the child echoes
//   forkd_bench_floor [--host 127.0.0.1] --port P --mode fork-exec  -- /bin/cat   fork + execv
//   forkd_bench_floor [--host 127.0.0.1] --port P --mode spawn-exec -- /bin/cat   posix_spawn
//                       (glibc: clone(CLONE_VM|CLONE_VFORK), i.e. vfork + exec)
// Prints "listening HOST:PORT" on stdout once bound (port 0 picks one). Loopback only.
// Stop it with SIGTERM.
#include "common/base/unique_fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace forkd {
namespace {

enum class Mode { echo, fork_exec, spawn_exec };

struct Options {
    std::string host = "127.0.0.1";
    int port = -1;
    Mode mode = Mode::echo;
    std::vector<char*> argv;  // exec modes, null-terminated
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "forkd_bench_floor: %s\nusage: forkd_bench_floor [--host 127.0.0.1] --port P "
                 "--mode echo|fork-exec|spawn-exec [-- PROGRAM ARGS...]\n", why);
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    int i = 1;
    for (; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--") { ++i; break; }
        if (i + 1 >= argc) usage("missing value");
        std::string_view value = argv[++i];
        if (arg == "--host") o.host = value;
        else if (arg == "--port") o.port = std::atoi(value.data());
        else if (arg == "--mode") {
            if (value == "echo") o.mode = Mode::echo;
            else if (value == "fork-exec") o.mode = Mode::fork_exec;
            else if (value == "spawn-exec") o.mode = Mode::spawn_exec;
            else usage("unknown mode");
        } else usage("unknown option");
    }
    for (; i < argc; ++i) o.argv.push_back(argv[i]);
    if (o.port < 0 || o.port > 65535) usage("--port 0-65535 required");
    if (o.mode != Mode::echo && (o.argv.empty() || o.argv[0][0] != '/')) usage("exec modes need -- /ABSOLUTE/PROGRAM");
    o.argv.push_back(nullptr);
    return o;
}

UniqueFd listen_loopback(const Options& o) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(o.port));
    if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1 || (ntohl(addr.sin_addr.s_addr) >> 24) != 127)
        usage("--host must be an IPv4 loopback address");
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
        std::fprintf(stderr, "forkd_bench_floor: cannot listen on %s:%d: %s\n", o.host.c_str(), o.port, std::strerror(errno));
        std::exit(3);
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    std::printf("listening %s:%u\n", o.host.c_str(), ntohs(addr.sin_port));
    std::fflush(stdout);
    return fd;
}

[[noreturn]] void echo_child(int conn) {
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(conn, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(0);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ::write(conn, buf + off, static_cast<std::size_t>(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) _exit(1);
            off += w;
        }
    }
}

void start_handler(const Options& o, int listener, int conn) {
    if (o.mode == Mode::spawn_exec) {
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, conn, 0);
        posix_spawn_file_actions_adddup2(&actions, conn, 1);
        pid_t pid;
        ::posix_spawn(&pid, o.argv[0], &actions, nullptr, o.argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        return;
    }
    if (::fork() != 0) return;  // parent (or a failed fork: the connection is simply closed)
    ::close(listener);
    if (o.mode == Mode::echo) echo_child(conn);
    ::dup2(conn, 0);
    ::dup2(conn, 1);
    ::execv(o.argv[0], o.argv.data());
    _exit(127);
}

int serve(const Options& o) {
    UniqueFd listener = listen_loopback(o);
    for (;;) {
        UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (conn) start_handler(o, listener.get(), conn.get());
        else if (errno != EINTR && errno != ECONNABORTED) usleep(10000);
        while (::waitpid(-1, nullptr, WNOHANG) > 0) {}
    }
}

} // namespace
} // namespace forkd

int main(int argc, char** argv) {
    return forkd::serve(forkd::parse(argc, argv));
}
