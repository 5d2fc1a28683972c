// SPDX-License-Identifier: MIT
// forkd_bench_epoll: the leanest event-loop echo server, as the peer of forkd's event mode.
// One process, one epoll set, level-triggered, non-blocking sockets, a fixed buffer per read:
// accept what is there, echo what arrives (a short write parks the rest and waits for EPOLLOUT),
// close on EOF. No limits, no logging, no accounting: whatever event mode adds costs relative
// to this.
//
//   forkd_bench_epoll [--host 127.0.0.1] --port P
// Prints "listening HOST:PORT" on stdout once bound (port 0 picks one). Loopback only.
// Stop it with SIGTERM.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

namespace {

struct Pending {
    std::string bytes;  // echoed bytes the socket did not take yet
    bool eof = false;
};

int listen_on(const std::string& host, int port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(std::uint16_t(port));
    if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
        bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 4096) != 0) {
        std::perror("forkd_bench_epoll: bind/listen");
        std::exit(1);
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    std::printf("listening %s:%u\n", host.c_str(), ntohs(addr.sin_port));
    std::fflush(stdout);
    return fd;
}

} // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    int port = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--host") == 0) host = argv[i + 1];
        else if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[i + 1]);
    }
    if (port < 0) {
        std::fprintf(stderr, "usage: forkd_bench_epoll [--host 127.0.0.1] --port P\n");
        return 2;
    }
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    const int listener = listen_on(host, port);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{EPOLLIN, {.fd = listener}};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    std::unordered_map<int, Pending> pending;
    char buf[16384];
    epoll_event events[256];
    auto close_client = [&](int fd) {
        pending.erase(fd);
        close(fd);
    };
    for (;;) {
        const int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == listener) {
                for (int k = 0; k < 64; ++k) {
                    const int c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    epoll_event cev{EPOLLIN, {.fd = c}};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            auto it = pending.find(fd);
            if (it != pending.end()) {  // waiting for room: send what is parked
                const ssize_t w = send(fd, it->second.bytes.data(), it->second.bytes.size(), MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) { close_client(fd); continue; }
                if (w > 0) it->second.bytes.erase(0, std::size_t(w));
                if (!it->second.bytes.empty()) continue;
                if (it->second.eof) { close_client(fd); continue; }
                pending.erase(it);
                epoll_event cev{EPOLLIN, {.fd = fd}};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
                continue;
            }
            const ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && errno == EAGAIN) continue;
            if (r <= 0) { close(fd); continue; }
            const ssize_t w = send(fd, buf, std::size_t(r), MSG_NOSIGNAL);
            if (w == r) continue;
            if (w < 0 && errno != EAGAIN) { close(fd); continue; }
            pending[fd].bytes.assign(buf + (w > 0 ? w : 0), std::size_t(r - (w > 0 ? w : 0)));
            epoll_event cev{EPOLLOUT, {.fd = fd}};
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
        }
    }
}
