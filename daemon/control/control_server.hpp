// SPDX-License-Identifier: MIT
#pragma once
// The control socket inside the master's sd-event loop (protocol: common/control/control_protocol.hpp).
// Never blocks the loop: non-blocking accept and I/O, requests bounded in size and time, at most
// max_clients connections at once and max_clients_per_uid from one uid (control_admission.hpp),
// EMFILE/ENFILE pauses accepting for a while (accept_pause,
// daemon/core/accept.hpp). Every request's peer is checked with SO_PEERCRED (see
// control_dispatch.hpp, which also audit-logs).
#include "common/base/unique_fd.hpp"
#include "common/base/unix_bind.hpp"
#include "daemon/core/accept.hpp"
#include "daemon/control/control_admission.hpp"
#include "daemon/control/control_dispatch.hpp"
#include "daemon/control/control_target.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"

#include <systemd/sd-event.h>
#include <sys/types.h>

#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace forkd {

struct ControlServerLimits {
    std::size_t max_clients = 32;
    std::size_t max_clients_per_uid = 8;  // root and the daemon's uid: unbounded, and a reserve
    std::size_t admin_reserve = 4;        // of max_clients that other uids cannot take
    std::chrono::milliseconds client_timeout{5000};
    // A reply the target gives later (ControlTarget::upgrade): how long the client may wait for
    // it, from its request. The target's own bound (the upgrade check's 10 s) comes first.
    std::chrono::milliseconds deferred_timeout{30000};
    std::chrono::milliseconds accept_pause = forkd::accept_pause;  // after EMFILE/ENFILE
};

class ControlServer {
public:
    // Binds PATH (parent directories created, mode 0755; the directory must be one forkd can
    // trust, common/base/run_dir.hpp; a stale socket replaced only if nothing listens on it), mode 0660, owned by the daemon's uid and the control group. Throws
    // std::runtime_error with a one-line reason at start-up ("control socket PATH is in use").
    // The read-only door (ControlDoor::read_only) is mode 0666 and serves only the open
    // commands (status, list) to anyone, whatever their credentials.
    ControlServer(sd_event* event, const std::string& path, ControlTarget& target,
                  ControlServerLimits limits = {}, ControlDoor door = ControlDoor::full);
    // A live upgrade's new image: the listening socket the old one had bound (and its file).
    ControlServer(sd_event* event, UniqueFd listener, UnixSocketFile file, ControlTarget& target,
                  ControlServerLimits limits = {}, ControlDoor door = ControlDoor::full);
    // Closes the listener and ordinary clients and unlinks the path (if it is still ours).
    // Clients that asked to stop are NOT closed: their descriptors are released on purpose and
    // left for the kernel to close when the process exits, which is the EOF that tells
    // "forkctl stop" the daemon is gone. Destroy the server only on the way out of the process.
    // target.stop() is called from inside a client's callback, after its reply was sent: it may
    // begin the stop but must not destroy the server there and then.
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    const std::string& path() const { return path_; }
    // What a live upgrade hands over: the listening socket and the file it is bound to.
    int listener_fd() const { return listener_.get(); }
    const UnixSocketFile& socket_file() const { return socket_file_; }
    std::size_t client_count() const { return clients_.size(); }
    // Sends the replies held until the target's changes applied (ControlTarget::changes_applied).
    void release_held();

    struct Client;  // one control connection (control_server.cpp)

private:
    void bind_socket();
    void watch_listener();
    void accept_clients();
    void pause_accepting(int error);
    void resume_accepting();
    void admit_client(UniqueFd fd);
    void refuse_client(UniqueFd fd, const PeerCredentials& peer, const ControlDecision& decision);
    void add_client(UniqueFd fd, PeerCredentials peer);
    void close_client(Client* client);
    void forget(uid_t uid);  // a client of UID is gone: its admission slot frees

    // A stop client's reply is on its way: begin the daemon's stop.
    void begin_stop();
    // Where the deferred reply for the client numbered SERIAL goes: to it, if it still waits.
    SendLater send_later(std::uint64_t serial);
    void deliver_later(std::uint64_t serial, std::string reply);

    sd_event* event_;
    std::string path_;
    ControlTarget& target_;
    ControlServerLimits limits_;
    ControlDoor door_;
    ControlAdmission admission_;
    UniqueFd listener_;
    UnixSocketFile socket_file_;  // what we bound, so the destructor never unlinks a successor's socket
    EventSourcePtr listener_source_, resume_timer_;
    std::list<std::unique_ptr<Client>> clients_;
    std::uint64_t next_serial_ = 1;
    // What a deferred reply holds to reach us: it may be called after the server is gone.
    std::shared_ptr<ControlServer*> self_ = std::make_shared<ControlServer*>(this);
};

} // namespace forkd
