// SPDX-License-Identifier: MIT
#include "daemon/master/listen_sockets.hpp"

#include "common/base/error.hpp"
#include "common/base/unix_bind.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>

namespace forkd {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& address, int err) {
    throw BindError("cannot " + what + " " + address + ": " + errno_text(err));
}

std::string bound_name(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    return format_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

// Start-up and reload report a listener that cannot be opened as a BindError (exit 3).
template <class T>
T or_throw(Result<T> opened) {
    if (!opened) throw BindError(opened.error().message());
    return std::move(*opened);
}

std::vector<ListenSocket> just(ListenSocket socket) {
    std::vector<ListenSocket> sockets;
    sockets.push_back(std::move(socket));
    return sockets;
}

Result<ListenSocket> listen_on(UniqueFd fd, const std::string& configured, const std::string& shown,
                               int backlog) {
    if (listen(fd.get(), backlog) != 0) return system_error("cannot listen on " + shown);
    ListenSocket socket;
    socket.bound = bound_name(fd.get());
    socket.fd = std::move(fd);
    socket.configured = configured;
    return socket;
}

Result<ListenSocket> bind_inet(const addrinfo& ai, bool dual_stack, const std::string& configured,
                               int backlog) {
    const std::string shown = format_sockaddr(ai.ai_addr, ai.ai_addrlen);
    UniqueFd fd(socket(ai.ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return system_error("cannot create socket for " + shown);
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai.ai_family == AF_INET6) {
        int v6only = dual_stack ? 0 : 1;
        setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    if (bind(fd.get(), ai.ai_addr, ai.ai_addrlen) != 0) return system_error("cannot bind " + shown);
    return listen_on(std::move(fd), configured, shown, backlog);
}

Result<std::vector<ListenSocket>> open_any(const TcpAddress& tcp, const std::string& configured,
                                           int backlog) {
    // One dual-stack IPv6 socket serves v4 and v6; a host without IPv6 falls back to 0.0.0.0.
    sockaddr_in6 six{};
    six.sin6_family = AF_INET6;
    six.sin6_addr = in6addr_any;
    six.sin6_port = htons(tcp.port);
    addrinfo ai{};
    ai.ai_family = AF_INET6;
    ai.ai_addr = reinterpret_cast<sockaddr*>(&six);
    ai.ai_addrlen = sizeof six;
    auto dual = bind_inet(ai, true, configured, backlog);
    if (dual) return just(std::move(*dual));
    if (UniqueFd probe(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)); probe)
        return dual.error();  // IPv6 exists: the error is real
    sockaddr_in four{};
    four.sin_family = AF_INET;
    four.sin_addr.s_addr = htonl(INADDR_ANY);
    four.sin_port = htons(tcp.port);
    ai.ai_family = AF_INET;
    ai.ai_addr = reinterpret_cast<sockaddr*>(&four);
    ai.ai_addrlen = sizeof four;
    auto v4 = bind_inet(ai, false, configured, backlog);
    if (!v4) return v4.error();
    return just(std::move(*v4));
}

Result<std::vector<ListenSocket>> open_tcp(const TcpAddress& tcp, const std::string& configured,
                                           int backlog) {
    if (tcp.any) return open_any(tcp, configured, backlog);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(tcp.port);
    if (int rc = getaddrinfo(tcp.host.c_str(), port.c_str(), &hints, &found); rc != 0)
        return failure("cannot resolve " + configured + ": " + gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, freeaddrinfo);
    std::vector<ListenSocket> sockets;
    for (const addrinfo* ai = found; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        const std::string shown = format_sockaddr(ai->ai_addr, ai->ai_addrlen);
        bool duplicate = false;
        for (const auto& s : sockets) duplicate |= (s.bound == shown);
        if (duplicate) continue;
        auto bound = bind_inet(*ai, false, configured, backlog);
        if (!bound) return bound.error();
        sockets.push_back(std::move(*bound));
    }
    if (sockets.empty()) return failure("cannot bind " + configured + ": no usable address");
    return sockets;
}

// The socket goes into a directory forkd can trust (common/base/run_dir.hpp), never created
// for it; a stale socket there is replaced only if nothing answers on it.
std::vector<ListenSocket> open_unix(const UnixAddress& address, const std::string& configured,
                                    int backlog) {
    Result<RunPath> run = open_run_path(address.path, CreateMissing::no);
    if (!run) throw BindError("cannot bind " + configured + ": " + run.error().message());
    // Clients need write permission to connect: who may is governed by the directory.
    Result<BoundUnixSocket> bound = bind_unix_socket(std::move(*run), 0666);
    if (!bound) {
        const Error& e = bound.error();
        if (e.code == EADDRINUSE || e.code == EEXIST || e.context == "bind") fail("bind", configured, e.code);
        if (e.context == "verify")
            throw BindError("cannot bind " + configured + ": its directory was moved while binding");
        fail(e.context + " socket", configured, e.code);
    }
    ListenSocket socket = or_throw(listen_on(std::move(bound->fd), configured, configured, backlog));
    socket.is_unix = true;
    socket.unix_file = std::move(bound->file);
    socket.bound = "unix:" + address.path;
    return just(std::move(socket));
}

std::optional<std::vector<int>>& passed_fds() {
    static std::optional<std::vector<int>> fds;
    return fds;
}

Result<std::vector<ListenSocket>> open_systemd(const std::string& configured) {
    std::vector<ListenSocket> sockets;
    for (int fd : systemd_listen_fds()) {
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            return failure("socket activation: fd " + std::to_string(fd) +
                           " is not a listening stream socket");
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        ListenSocket socket;
        socket.fd = UniqueFd(dup(fd));  // the original stays ours for a later reload
        fcntl(socket.fd.get(), F_SETFD, FD_CLOEXEC);
        socket.configured = configured;
        socket.bound = bound_name(fd);
        socket.is_unix = sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) > 0;
        sockets.push_back(std::move(socket));
    }
    if (sockets.empty())
        return failure("listen = systemd, but no socket was passed (LISTEN_FDS unset)");
    return sockets;
}

} // namespace

void unlink_unix_socket(const ListenSocket& socket) {
    if (socket.unix_file) socket.unix_file->unlink();
}

std::vector<int> systemd_listen_fds() {
    auto& fds = passed_fds();
    if (!fds) {
        fds.emplace();
        int n = sd_listen_fds(1);  // unsets LISTEN_*: handlers must not see them
        for (int i = 0; i < n; ++i) fds->push_back(SD_LISTEN_FDS_START + i);
    }
    return *fds;
}

int max_backlog() {
    std::ifstream in("/proc/sys/net/core/somaxconn");
    int value = 0;
    if (in >> value && value > 0) return value;
    return 4096;
}

std::vector<ListenSocket> open_listeners(const ListenAddress& address, int backlog) {
    const std::string configured = to_string(address);
    if (backlog <= 0) backlog = max_backlog();
    if (auto* tcp = std::get_if<TcpAddress>(&address))
        return or_throw(open_tcp(*tcp, configured, backlog));
    if (auto* unix_address = std::get_if<UnixAddress>(&address))
        return open_unix(*unix_address, configured, backlog);
    return or_throw(open_systemd(configured));
}

} // namespace forkd
