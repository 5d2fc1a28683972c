// SPDX-License-Identifier: MIT
// forkd_bench_hold: opens many concurrent idle connections to an echo server and holds them,
// spread over several processes (a descriptor each) and source addresses (a local port each:
// one loopback address has about 28,000 ephemeral ports).
//
//   forkd_bench_hold --port P --connections N [--processes K] [--sources S]
// Each connection sends one byte and waits for its echo: once every one is answered the program
// prints {"connections": N, "served_s": T} on stdout, then holds them all until its stdin closes
// (or reaches EOF), closes them and exits. Loopback only (127.0.0.1 .. 127.0.0.S as sources).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int connect_from(int port, int source) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK + std::uint32_t(source));
    const int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return close(fd), -1;
    sockaddr_in server{};
    server.sin_family = AF_INET;
    server.sin_port = htons(std::uint16_t(port));
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0) return close(fd), -1;
    return fd;
}

// One holder: `count` connections, each answered, then a byte on `ready`; holds until `release`
// reaches EOF.
[[noreturn]] void hold(int port, int count, int first_source, int sources, int ready, int release) {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, rlim_t(count) + 64);
    setrlimit(RLIMIT_NOFILE, &limit);
    std::vector<int> fds;
    for (int i = 0; i < count; ++i) {
        const int fd = connect_from(port, (first_source + i) % sources);
        if (fd < 0 || send(fd, "x", 1, MSG_NOSIGNAL) != 1) {
            std::perror("forkd_bench_hold: connect");
            _exit(2);
        }
        fds.push_back(fd);
    }
    char byte;
    for (int fd : fds) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 30000) != 1 || read(fd, &byte, 1) != 1) {
            std::fprintf(stderr, "forkd_bench_hold: a connection was not answered\n");
            _exit(3);
        }
    }
    byte = 'r';
    if (write(ready, &byte, 1) != 1) _exit(4);
    while (read(release, &byte, 1) > 0) {
    }
    for (int fd : fds) close(fd);
    _exit(0);
}

} // namespace

int main(int argc, char** argv) {
    int port = -1, connections = 1000, processes = 4, sources = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        const int v = std::atoi(argv[i + 1]);
        if (a == "--port") port = v;
        else if (a == "--connections") connections = v;
        else if (a == "--processes") processes = v;
        else if (a == "--sources") sources = v;
    }
    if (port <= 0 || connections <= 0 || processes <= 0 || sources <= 0) {
        std::fprintf(stderr, "usage: forkd_bench_hold --port P --connections N [--processes K] [--sources S]\n");
        return 2;
    }
    int ready[2], release[2];
    if (pipe(ready) != 0 || pipe(release) != 0) return 1;
    const auto start = std::chrono::steady_clock::now();
    std::vector<pid_t> children;
    for (int p = 0; p < processes; ++p) {
        const int share = connections / processes + (p < connections % processes ? 1 : 0);
        const pid_t pid = fork();
        if (pid == 0) {
            close(ready[0]);
            close(release[1]);
            hold(port, share, p, sources, ready[1], release[0]);
        }
        children.push_back(pid);
    }
    close(ready[1]);
    close(release[0]);
    int answered = 0;
    char byte;
    while (answered < processes && read(ready[0], &byte, 1) == 1) ++answered;
    if (answered < processes) return 1;
    const double served = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"connections\": %d, \"served_s\": %.3f}\n", connections, served);
    std::fflush(stdout);
    while (read(0, &byte, 1) > 0) {
    }
    close(release[1]);
    int failed = 0;
    for (pid_t pid : children) {
        int status = 0;
        waitpid(pid, &status, 0);
        failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    return failed ? 1 : 0;
}
