// SPDX-License-Identifier: MIT
#include "ctl/control_client.hpp"

#include "common/base/error.hpp"
#include "common/control/control_commands.hpp"
#include "common/runtime_paths.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

namespace forkd::ctl {

namespace {

constexpr std::chrono::milliseconds connect_limit{10000};  // when there is no deadline at all

constexpr std::chrono::milliseconds exit_poll_interval{5};

// Readable without privilege (unlike kill(pid, 0) on another user's process).
bool process_gone(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!stat || !std::getline(stat, text)) return true;
    auto paren = text.rfind(')');
    if (paren == std::string::npos || paren + 2 >= text.size()) return true;
    char state = text[paren + 2];
    return state == 'Z' || state == 'X';
}

std::string reach_error(const std::string& path, int error) {
    std::string message = "cannot reach forkd at " + path + ": " + errno_text(error);
    if (error == ENOENT || error == ECONNREFUSED) message += " (is it running?)";
    return message;
}

std::chrono::milliseconds remaining(const Deadline& deadline) {
    if (!deadline) return std::chrono::milliseconds(-1);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
    return std::max(left, std::chrono::milliseconds(0));
}

// A UNIX connect only blocks while the listen backlog is full; SO_SNDTIMEO bounds that wait.
void set_send_timeout(int fd, std::chrono::milliseconds timeout) {
    if (timeout.count() <= 0) timeout = std::chrono::milliseconds(1);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

} // namespace

Deadline deadline_after(std::optional<std::chrono::milliseconds> timeout) {
    if (!timeout) return std::nullopt;
    return Clock::now() + *timeout;
}

ControlConnection::ControlConnection(const std::string& path, Deadline deadline) : path_(path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path)
        throw ClientError(exit_usage, "control socket path too long: " + path);
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd_) throw ClientError(exit_failed, std::string("cannot create a socket: ") + errno_text(errno));
    set_send_timeout(fd_.get(), deadline ? remaining(deadline) : connect_limit);
    int r;
    do r = ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd_.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) server_pid_ = cred.pid;
        return;
    }
    if (errno == EACCES || errno == EPERM) throw ClientError(exit_denied, reach_error(path, errno));
    if (errno == EAGAIN || errno == EINPROGRESS)
        throw ClientError(exit_unreachable, "forkd at " + path + " did not accept the connection in time");
    throw ClientError(exit_unreachable, reach_error(path, errno));
}

bool ControlConnection::wait_readable(Deadline deadline) {
    for (;;) {
        pollfd pfd{fd_.get(), POLLIN, 0};
        int r = ::poll(&pfd, 1, static_cast<int>(remaining(deadline).count()));
        if (r > 0) return true;
        if (r == 0) return false;
        if (errno != EINTR) throw ClientError(exit_failed, std::string("poll: ") + errno_text(errno));
    }
}

control::Reply ControlConnection::exchange(const control::Request& request, Deadline deadline) {
    std::string line = control::encode_request(request);
    set_send_timeout(fd_.get(), deadline ? remaining(deadline) : connect_limit);
    // forkd may answer and hang up before reading (too many clients): a failed send still
    // leaves its reply to read, so the send error only counts when no reply comes.
    std::string send_error;
    for (std::size_t sent = 0; sent < line.size();) {
        ssize_t n = ::send(fd_.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            send_error = "cannot send to forkd at " + path_ + ": " + errno_text(errno);
            break;
        }
        sent += static_cast<std::size_t>(n);
    }
    std::string reply;
    for (;;) {
        if (!wait_readable(deadline))
            throw ClientError(exit_unreachable, "forkd at " + path_ + " did not answer in time");
        char buffer[4096];
        ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            throw ClientError(exit_unreachable, !send_error.empty() ? send_error
                              : "forkd at " + path_ + " closed the connection without answering");
        reply.append(buffer, static_cast<std::size_t>(n));
        if (auto newline = reply.find('\n'); newline != std::string::npos) {
            reply.resize(newline);
            break;
        }
        if (reply.size() > control::max_reply_size)
            throw ClientError(exit_failed, "reply from forkd at " + path_ + " is too large");
    }
    try {
        return control::parse_reply(reply);
    } catch (const control::ProtocolError& e) {
        throw ClientError(exit_failed, "bad reply from forkd at " + path_ + ": " + e.what());
    }
}

bool ControlConnection::wait_exited(Deadline deadline) {
    for (;;) {
        if (!wait_readable(deadline)) return false;
        char buffer[256];
        ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
    }
    while (server_pid_ > 0 && !process_gone(server_pid_)) {
        if (deadline && Clock::now() >= *deadline) return false;
        std::this_thread::sleep_for(exit_poll_interval);
    }
    return true;
}

// A caller the control socket's mode keeps out (not in the control group) may still read:
// status and list also answer on the read-only socket beside it (forkd.ro.sock).
ControlConnection connect_for(const std::string& path, const control::Request& request, Deadline deadline) {
    try {
        return ControlConnection(path, deadline);
    } catch (const ClientError& denied) {
        if (denied.exit_code() != exit_denied || control::changes_state(request.command)) throw;
        try {
            return ControlConnection(read_only_control_socket(path), deadline);
        } catch (const ClientError&) {
            throw denied;  // no read-only door either: the first refusal says what to fix
        }
    }
}

control::Reply request_once(const std::string& path, const control::Request& request, Deadline deadline) {
    ControlConnection connection = connect_for(path, request, deadline);
    return connection.exchange(request, deadline);
}

} // namespace forkd::ctl
