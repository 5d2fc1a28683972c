// SPDX-License-Identifier: MIT
// forkd_bench_epoll_echo: a single-process, single-threaded epoll echo server, the backend of
// the proxy benchmark (run-proxy-bench.sh). It must be faster than any proxy in front of it, so
// that the proxies, not the backend, are what is measured: no fork, no limits, no logging.
//
//   forkd_bench_epoll_echo [--host 127.0.0.1] --port P
// Prints "listening HOST:PORT" once bound. Loopback only. Stop it with SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

namespace {

// What a connection still owes its client: echoed bytes the socket did not take yet.
struct Pending {
    std::string bytes;
    bool eof = false;
};

int listen_on(const char* host, int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(std::uint16_t(port));
    if (::inet_pton(AF_INET, host, &sin.sin_addr) != 1 || (ntohl(sin.sin_addr.s_addr) >> 24) != 127) {
        std::fprintf(stderr, "forkd_bench_epoll_echo: %s: loopback IPv4 only\n", host);
        std::exit(2);
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 || ::listen(fd, 4096) != 0) {
        std::perror("forkd_bench_epoll_echo: bind/listen");
        std::exit(1);
    }
    return fd;
}

// Echoes what is readable; false when the connection is done (EOF flushed, or an error).
bool serve(int fd, Pending& pending, int epfd) {
    char buf[65536];
    for (;;) {
        if (!pending.bytes.empty()) {
            const ssize_t n = ::send(fd, pending.bytes.data(), pending.bytes.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EAGAIN) break;
            if (n < 0) return false;
            pending.bytes.erase(0, std::size_t(n));
            if (!pending.bytes.empty()) break;
        }
        if (pending.eof) return false;
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) pending.eof = true;
        else if (n < 0 && errno == EAGAIN) break;
        else if (n < 0) return false;
        else pending.bytes.assign(buf, std::size_t(n));
    }
    epoll_event ev{};
    ev.events = pending.bytes.empty() ? EPOLLIN : EPOLLOUT;
    ev.data.fd = fd;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    return true;
}

} // namespace

int main(int argc, char** argv) {
    const char* host = "127.0.0.1";
    int port = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--host") == 0) host = argv[i + 1];
        else if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[i + 1]);
    }
    if (port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: forkd_bench_epoll_echo [--host 127.0.0.1] --port P\n");
        return 2;
    }
    const int listener = listen_on(host, port);
    const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listener;
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
    std::printf("listening %s:%d\n", host, port);
    std::fflush(stdout);
    std::unordered_map<int, Pending> connections;
    epoll_event events[256];
    for (;;) {
        const int n = ::epoll_wait(epfd, events, 256, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return 1;
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == listener) {
                int client;
                while ((client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    epoll_event cev{};
                    cev.events = EPOLLIN;
                    cev.data.fd = client;
                    ::epoll_ctl(epfd, EPOLL_CTL_ADD, client, &cev);
                    connections[client];
                }
                continue;
            }
            auto it = connections.find(fd);
            if (it == connections.end()) continue;
            if (!serve(fd, it->second, epfd)) {
                ::close(fd);
                connections.erase(it);
            }
        }
    }
}
