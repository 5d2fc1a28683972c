// SPDX-License-Identifier: MIT
#include "daemon/master/agent_server.hpp"

#include "common/base/error.hpp"
#include "common/log.hpp"
#include "daemon/core/accept.hpp"
#include "daemon/event_loop/event_sources.hpp"

#include <sys/socket.h>

namespace forkd {

AgentServer::AgentServer(sd_event* event, std::vector<ListenSocket> sockets,
                         std::function<std::string()> line)
    : event_(event), line_(std::move(line)) {
    sockets_.reserve(sockets.size());
    for (auto& socket : sockets) sockets_.push_back({std::move(socket), {}});
    for (auto& s : sockets_) {
        Socket* socket = &s;
        s.source = event_loop::value_or_throw(event_loop::add_io(
            event_, s.socket.fd.get(), EPOLLIN, "agent-listener", [this, socket] { accept_on(*socket); }));
        // Like the control socket: answered ahead of a flood of clients waiting to be served.
        sd_event_source_set_priority(s.source.get(), SD_EVENT_PRIORITY_IMPORTANT);
    }
}

AgentServer::~AgentServer() {
    resume_timer_.reset();
    for (auto& s : sockets_) s.source.reset();
}

const std::string& AgentServer::bound() const {
    static const std::string none;
    return sockets_.empty() ? none : sockets_.front().socket.bound;
}

void AgentServer::accept_on(Socket& socket) {
    const AcceptOutcome outcome = accept_batch(
        socket.socket.fd.get(), ConnectionMode::nonblocking, [] { return true; },
        [this](AcceptedConnection c) {
            answer(c.fd.get());
            return true;
        });
    if (outcome.end == AcceptEnd::exhausted) pause(outcome.error);
    if (outcome.end == AcceptEnd::failed)
        log::warning("agent-accept-failed", {{"error", errno_text(outcome.error)}});
}

// A line of a few bytes fits a new socket's send buffer whole: one send, never a wait. What
// the balancer may have sent (agent-send) is read away first, so that the close is a FIN and
// not a reset that could discard the answer.
void AgentServer::answer(int fd) {
    char discard[512];
    while (::recv(fd, discard, sizeof discard, MSG_DONTWAIT) > 0) {
    }
    const std::string reply = line_() + "\n";
    (void)!::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_WR);
}

void AgentServer::pause(int error) {
    log::warning("agent-accept-paused", {{"error", errno_text(error)}});
    for (auto& s : sockets_) sd_event_source_set_enabled(s.source.get(), SD_EVENT_OFF);
    auto resume = [this] {
        resume_timer_.reset();
        for (auto& s : sockets_) sd_event_source_set_enabled(s.source.get(), SD_EVENT_ON);
    };
    auto timer = event_loop::add_timer(
        event_, std::uint64_t(std::chrono::microseconds(accept_pause).count()), "agent-accept-resume", resume);
    if (!timer) return resume();
    resume_timer_ = std::move(*timer);
}

} // namespace forkd
