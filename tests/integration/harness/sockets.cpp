// SPDX-License-Identifier: MIT
#include "harness/sockets.hpp"

#include "harness/daemon.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace forkd::test {

namespace {

bool fill_inet(const std::string& host, std::uint16_t port, sockaddr_storage& ss, socklen_t& len) {
    std::memset(&ss, 0, sizeof(ss));
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof(sockaddr_in);
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    std::string h = host;
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

// Connects fd (non-blocking until then) to sa within timeout; the connected fd, made blocking,
// or an invalid one.
UniqueFd connect_within(UniqueFd fd, const sockaddr* sa, socklen_t len, Millis timeout) {
    if (!fd) return {};
    if (::connect(fd.get(), sa, len) != 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) return {};
        pollfd p{fd.get(), POLLOUT, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
        int err = 0;
        socklen_t elen = sizeof(err);
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) {
            errno = err;
            return {};
        }
    }
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    return fd;
}

UniqueFd nonblocking_stream_socket(int family) {
    return UniqueFd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
}

} // namespace

UniqueFd connect_tcp(std::uint16_t port, const std::string& host, Millis timeout) {
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!fill_inet(host, port, ss, len)) return {};
    return connect_within(nonblocking_stream_socket(ss.ss_family),
                          reinterpret_cast<sockaddr*>(&ss), len, timeout);
}

UniqueFd connect_unix(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof(sa.sun_path)) return {};
    std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
    return connect_within(nonblocking_stream_socket(AF_UNIX), reinterpret_cast<sockaddr*>(&sa),
                          sizeof(sa), 5s);
}

UniqueFd connect_tcp_from(std::uint16_t port, const std::string& host, const std::string& source) {
    sockaddr_storage ss, local;
    socklen_t len = 0, local_len = 0;
    if (!fill_inet(host, port, ss, len) || !fill_inet(source, 0, local, local_len)) return {};
    UniqueFd fd = nonblocking_stream_socket(ss.ss_family);
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), local_len) != 0) return {};
    return connect_within(std::move(fd), reinterpret_cast<sockaddr*>(&ss), len, 5s);
}

bool send_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

namespace {

// Reads what arrives until stop(buffer) is true, EOF/error, or the deadline.
template <class Stop>
std::string read_while(int fd, Millis timeout, Stop stop) {
    std::string out;
    auto deadline = Clock::now() + timeout;
    char buf[65536];
    while (!stop(out)) {
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

} // namespace

std::string read_until_eof(int fd, Millis timeout) {
    return read_while(fd, timeout, [](const std::string&) { return false; });
}

std::string read_n(int fd, std::size_t n, Millis timeout) {
    return read_while(fd, timeout, [n](const std::string& s) { return s.size() >= n; });
}

bool echo_roundtrip(int fd, const std::string& payload, Millis timeout) {
    return send_all(fd, payload) && read_n(fd, payload.size(), timeout) == payload;
}

UniqueFd served_client(const Daemon& daemon, const std::string& payload) {
    auto fd = connect_tcp(daemon.port());
    if (!fd.valid() || !echo_roundtrip(fd.get(), payload)) return UniqueFd();
    return fd;
}

bool wait_closed(int fd, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    char buf[65536];
    for (;;) {
        pollfd p{fd, POLLIN | POLLRDHUP, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return false;
        if (r < 0) return false;
        ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0) return true;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                if (Clock::now() >= deadline) return false;
                continue;
            }
            return true;  // ECONNRESET and friends: closed
        }
        // data (e.g. chargen): discard and keep waiting for the end
    }
}

UniqueFd listen_tcp(std::uint16_t port, const std::string& host) {
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!fill_inet(host, port, ss, len)) return {};
    UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return {};
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return {};
    if (::listen(fd.get(), 16) != 0) return {};
    return fd;
}

std::uint16_t local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

std::uint16_t free_tcp_port() {
    UniqueFd fd = listen_tcp(0);
    return fd ? local_port(fd.get()) : 0;
}


std::string peer_of(const UniqueFd& client, const std::string& ip) {
    return ip + ":" + std::to_string(local_port(client.get()));
}

} // namespace forkd::test
