// SPDX-License-Identifier: MIT
#pragma once
// The HAProxy agent-check responder (agent-listen) in the master's sd-event loop: each
// connection is accepted, sent one line (agent_reply.hpp) and closed at once, so there is no
// per-client state to bound. Never blocks: non-blocking accept and a single non-blocking send of
// a few bytes into a fresh socket's empty buffer; at most accepts_per_wakeup per turn, at the
// control socket's priority, so load on the listeners does not delay it; EMFILE/ENFILE pauses
// accepting for accept_pause like the control socket.
#include "daemon/event_loop/sd_event_ptr.hpp"
#include "daemon/master/listen_sockets.hpp"

#include <systemd/sd-event.h>

#include <functional>
#include <string>
#include <vector>

namespace forkd {

class AgentServer {
public:
    // Takes the bound, listening sockets of agent-listen. Throws std::system_error if the loop
    // refuses them. line() is called per connection and returns the answer without "\n".
    AgentServer(sd_event* event, std::vector<ListenSocket> sockets, std::function<std::string()> line);
    ~AgentServer();
    AgentServer(const AgentServer&) = delete;
    AgentServer& operator=(const AgentServer&) = delete;

    // "127.0.0.1:41234": what the first socket is bound to.
    const std::string& bound() const;

private:
    struct Socket {
        ListenSocket socket;
        EventSourcePtr source;
    };
    void accept_on(Socket& socket);
    void answer(int fd);
    void pause(int error);

    sd_event* event_;
    std::vector<Socket> sockets_;
    std::function<std::string()> line_;
    EventSourcePtr resume_timer_;
};

} // namespace forkd
