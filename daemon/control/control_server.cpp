// SPDX-License-Identifier: MIT
#include "daemon/control/control_server.hpp"

#include "common/control/control_protocol.hpp"
#include "common/log.hpp"
#include "common/base/error.hpp"
#include "common/base/unix_bind.hpp"
#include "daemon/core/accept.hpp"
#include "daemon/event_loop/event_sources.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace forkd {

namespace {

using control::ErrorCode;

constexpr int listen_backlog = 64;
constexpr std::size_t read_chunk = 4096;

std::runtime_error socket_error(const std::string& what, const std::string& path, int error) {
    return std::runtime_error(what + " " + path + ": " + errno_text(error));
}

// The run directory is created if missing (0755) and must be one forkd can trust
// (common/base/run_dir.hpp); a stale socket in it is replaced only if nothing answers on it.
BoundUnixSocket bind_control_socket(const std::string& path, mode_t mode) {
    Result<RunPath> run = open_run_path(path, CreateMissing::yes);
    if (!run) throw std::runtime_error("cannot use control socket " + path + ": " + run.error().message());
    Result<BoundUnixSocket> bound = bind_unix_socket(std::move(*run), mode);
    if (bound) return std::move(*bound);
    const Error& e = bound.error();
    if (e.code == EADDRINUSE) throw std::runtime_error("control socket " + path + " is in use");
    if (e.code == EEXIST)
        throw std::runtime_error("control socket " + path + " exists and is not a socket");
    if (e.code == ENAMETOOLONG) throw std::runtime_error("control socket path " + path + " is too long");
    if (e.context == "verify")
        throw std::runtime_error("control socket " + path + ": its directory was moved while binding");
    throw socket_error("cannot " + e.context + " control socket", path, e.code);
}

std::vector<gid_t> groups_from_proc(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::vector<gid_t> groups;
    for (std::string line; std::getline(status, line);) {
        if (!line.starts_with("Groups:")) continue;
        std::istringstream words(line.substr(7));
        for (gid_t gid; words >> gid;) groups.push_back(gid);
    }
    return groups;
}

// SO_PEERGROUPS gives the groups the peer had when it connected (no race with a recycled pid);
// /proc is the fallback for kernels without it.
std::vector<gid_t> peer_groups(int fd, pid_t pid) {
    std::vector<gid_t> groups(64);
    for (int attempt = 0; attempt < 4; ++attempt) {
        socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
            groups.resize(len / sizeof(gid_t));
            return groups;
        }
        if (errno != ERANGE) break;
        groups.resize(len / sizeof(gid_t) + 1);
    }
    return groups_from_proc(pid);
}

std::optional<PeerCredentials> peer_credentials(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return std::nullopt;
    return PeerCredentials{cred.pid, cred.uid, cred.gid, peer_groups(fd, cred.pid)};
}

std::uint64_t usec(std::chrono::milliseconds ms) {
    return static_cast<std::uint64_t>(ms.count()) * 1000;
}

} // namespace

// One control connection: read one request line, write one reply, close. A client that asked
// to stop stays open (phase stopping) until it hangs up or the process exits.
struct ControlServer::Client {
    enum class Phase { reading, awaiting, held, writing, stopping };

    Client(ControlServer& server, UniqueFd fd, PeerCredentials peer, std::uint64_t serial)
        : server(server), fd(std::move(fd)), peer(std::move(peer)), serial(serial) {}

    ControlServer& server;
    UniqueFd fd;
    PeerCredentials peer;
    std::uint64_t serial;  // how a deferred reply finds it (ControlServer::deliver_later)
    Phase phase = Phase::reading;
    bool stays_open = false;  // a stop client
    std::string in, out;
    EventSourcePtr io, timer;

    // Each of these may end with server.close_client(this): nothing may touch *this after.
    void handle_io() {
        switch (phase) {
        case Phase::reading: return read_request();
        case Phase::awaiting:
        case Phase::held: return watch_hangup();
        case Phase::writing: return flush();
        case Phase::stopping: return watch_hangup();
        }
    }

    void read_request() {
        char buffer[read_chunk];
        for (;;) {
            ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n < 0) return server.close_client(this);
            if (n == 0) {  // a request may also end at the writer's shutdown instead of "\n"
                if (in.empty()) return server.close_client(this);
                return answer(in);
            }
            in.append(buffer, static_cast<std::size_t>(n));
            if (auto newline = in.find('\n'); newline != std::string::npos)
                return answer(in.substr(0, newline));
            if (in.size() > control::max_request_size + 1)
                return respond(control::encode_error(
                    ErrorCode::bad_request, "request too large (limit " +
                                                std::to_string(control::max_request_size) + " bytes)"));
        }
    }

    void answer(const std::string& line) {
        ControlServer& owner = server;
        auto [reply, stop, deferred] =
            dispatch_control_request(owner.target_, peer, line, owner.door_, owner.send_later(serial));
        if (deferred) return await();
        stays_open = stop;
        if (stop) {
            respond(std::move(reply));  // may destroy *this
            return owner.begin_stop();
        }
        deliver(std::move(reply));
    }

    // A reply that changed something waits until the change applies.
    void deliver(std::string reply) {
        if (!server.target_.changes_applied()) return hold(std::move(reply));
        respond(std::move(reply));  // may destroy *this
    }

    // The target answers later (deliver, through ControlServer::deliver_later), within
    // deferred_timeout; meanwhile only a hang-up is of interest.
    void await() {
        in.clear();
        phase = Phase::awaiting;
        sd_event_source_set_io_events(io.get(), EPOLLIN);
        (void)event_loop::rearm(timer.get(), usec(server.limits_.deferred_timeout));
    }

    // Until the change applies (release_held) or the client's time runs out (handle_timeout);
    // meanwhile only a hang-up is of interest.
    void hold(std::string reply) {
        in.clear();
        out = std::move(reply);
        phase = Phase::held;
        sd_event_source_set_io_events(io.get(), EPOLLIN);
    }

    void release() { respond(std::move(out)); }

    void respond(std::string reply) {
        in.clear();
        in.shrink_to_fit();
        out = std::move(reply);
        phase = Phase::writing;
        flush();
    }

    void flush() {
        while (!out.empty()) {
            ssize_t n = ::send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) {
                sd_event_source_set_io_events(io.get(), EPOLLOUT);
                return;
            }
            if (n < 0) return server.close_client(this);
            out.erase(0, static_cast<std::size_t>(n));
        }
        if (!stays_open) return server.close_client(this);
        // The stop client waits for the process to exit; only its hang-up is still of interest.
        phase = Phase::stopping;
        timer.reset();
        sd_event_source_set_io_events(io.get(), EPOLLIN);
    }

    void watch_hangup() {
        char buffer[read_chunk];
        ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) server.close_client(this);
    }

    void handle_timeout() {
        if (phase == Phase::held) return release();  // the change is made; only its echo is late
        if (phase == Phase::reading || phase == Phase::awaiting) {
            std::string reply = phase == Phase::reading
                                    ? control::encode_error(ErrorCode::bad_request, "request timed out")
                                    : control::encode_error(ErrorCode::failed, "no answer in time");
            (void)!::send(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        log::debug("control-timeout", {{"pid", static_cast<std::int64_t>(peer.pid)}});
        server.close_client(this);
    }
};

ControlServer::ControlServer(sd_event* event, const std::string& path, ControlTarget& target,
                             ControlServerLimits limits, ControlDoor door)
    : event_(event), path_(path), target_(target), limits_(limits), door_(door),
      admission_({limits.max_clients, limits.max_clients_per_uid, limits.admin_reserve}, target.daemon_uid()) {
    bind_socket();
    watch_listener();
}

ControlServer::ControlServer(sd_event* event, UniqueFd listener, UnixSocketFile file,
                             ControlTarget& target, ControlServerLimits limits, ControlDoor door)
    : event_(event), path_(file.run.path), target_(target), limits_(limits), door_(door),
      admission_({limits.max_clients, limits.max_clients_per_uid, limits.admin_reserve}, target.daemon_uid()),
      listener_(std::move(listener)), socket_file_(std::move(file)) {
    watch_listener();
}

void ControlServer::watch_listener() {
    auto source = event_loop::add_io(event_, listener_.get(), EPOLLIN, "control-listener",
                                     [this] { accept_clients(); });
    if (!source) {
        socket_file_.unlink();
        throw socket_error("cannot watch control socket", path_, source.error().code);
    }
    listener_source_ = std::move(*source);
    // An admin's request goes ahead of a flood of client connections waiting to be forked.
    sd_event_source_set_priority(listener_source_.get(), SD_EVENT_PRIORITY_IMPORTANT);
}

ControlServer::~ControlServer() {
    listener_source_.reset();
    resume_timer_.reset();
    listener_.reset();
    socket_file_.unlink();
    for (auto& client : clients_) {
        client->io.reset();
        client->timer.reset();
        // Deliberately leaked: the kernel closes it at exit, and that EOF is forkctl's signal.
        if (client->phase == Client::Phase::stopping) (void)client->fd.release();
    }
}

void ControlServer::bind_socket() {
    const bool full = door_ == ControlDoor::full;
    BoundUnixSocket bound = bind_control_socket(path_, full ? 0660 : 0666);
    listener_ = std::move(bound.fd);
    socket_file_ = std::move(bound.file);
    const RunPath& run = socket_file_.run;
    uid_t uid = target_.daemon_uid() == ::geteuid() ? static_cast<uid_t>(-1) : target_.daemon_uid();
    gid_t gid = full ? target_.control_gid().value_or(static_cast<gid_t>(-1)) : static_cast<gid_t>(-1);
    if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) &&
        ::fchownat(run.dir.get(), run.name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        log::warning("control-socket-owner", {{"path", path_}, {"error", errno_text(errno)}});
    if (::listen(listener_.get(), listen_backlog) < 0) {
        const int error = errno;
        socket_file_.unlink();
        throw socket_error("cannot listen on control socket", path_, error);
    }
}

void ControlServer::resume_accepting() {
    resume_timer_.reset();
    sd_event_source_set_enabled(listener_source_.get(), SD_EVENT_ON);
}

void ControlServer::accept_clients() {
    const AcceptOutcome outcome = accept_batch(
        listener_.get(), ConnectionMode::nonblocking, [] { return true; },
        [this](AcceptedConnection c) {
            admit_client(std::move(c.fd));
            return true;
        });
    if (outcome.end == AcceptEnd::exhausted) pause_accepting(outcome.error);
    if (outcome.end == AcceptEnd::failed)
        log::warning("control-accept-failed", {{"error", errno_text(outcome.error)}});
}

// Out of descriptors: the pending connection cannot be taken, so level-triggered epoll would
// wake us at once again. Stop listening for a while instead of spinning.
void ControlServer::pause_accepting(int error) {
    log::warning("control-accept-paused", {{"error", errno_text(error)}});
    sd_event_source_set_enabled(listener_source_.get(), SD_EVENT_OFF);
    auto timer = event_loop::add_timer(event_, usec(limits_.accept_pause), "control-accept-resume",
                                       [this] { resume_accepting(); });
    if (!timer) {
        sd_event_source_set_enabled(listener_source_.get(), SD_EVENT_ON);
        return;
    }
    resume_timer_ = std::move(*timer);
}

void ControlServer::admit_client(UniqueFd fd) {
    auto peer = peer_credentials(fd.get());
    if (!peer) {
        log::warning("control-peercred-failed", {{"error", errno_text(errno)}});
        return;
    }
    const ControlDecision decision = admission_.admit(peer->uid);
    if (decision.verdict == ControlVerdict::admitted) add_client(std::move(fd), std::move(*peer));
    else refuse_client(std::move(fd), *peer, decision);
}

namespace {

std::string_view refusal_reason(ControlVerdict verdict) {
    return verdict == ControlVerdict::too_many_from_uid ? "too-many-from-uid" : "too-many-clients";
}

} // namespace

// A flood is logged when its refusals begin and when they end (close_client), not per client.
void ControlServer::refuse_client(UniqueFd fd, const PeerCredentials& peer, const ControlDecision& decision) {
    const bool per_uid = decision.verdict == ControlVerdict::too_many_from_uid;
    const std::size_t limit = per_uid ? limits_.max_clients_per_uid : limits_.max_clients;
    std::string reply = control::encode_error(
        ErrorCode::failed, "too many control connections" +
                               (per_uid ? " from uid " + std::to_string(peer.uid) : std::string()) +
                               " (limit " + std::to_string(limit) + ")");
    (void)!::send(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (decision.starts_episode)
        log::notice("control-refused", {{"reason", refusal_reason(decision.verdict)},
                                        {"uid", static_cast<unsigned>(peer.uid)},
                                        {"limit", static_cast<std::uint64_t>(limit)},
                                        {"socket", path_}});
}

void ControlServer::add_client(UniqueFd fd, PeerCredentials peer) {
    const uid_t uid = peer.uid;
    auto client = std::make_unique<Client>(*this, std::move(fd), std::move(peer), next_serial_++);
    Client& added = *client;
    auto io = event_loop::add_io(event_, added.fd.get(), EPOLLIN, "control-client",
                                 [&added] { added.handle_io(); });
    auto timer = event_loop::add_timer(event_, usec(limits_.client_timeout), "control-client-timeout",
                                       [&added] { added.handle_timeout(); });
    if (!io || !timer) return forget(uid);
    added.io = std::move(*io);
    sd_event_source_set_priority(added.io.get(), SD_EVENT_PRIORITY_IMPORTANT);
    added.timer = std::move(*timer);
    clients_.push_back(std::move(client));
}

// Every stop request reaches the target: a second one means what a second SIGTERM means.
void ControlServer::begin_stop() { target_.stop(); }

SendLater ControlServer::send_later(std::uint64_t serial) {
    return [self = std::weak_ptr<ControlServer*>(self_), serial](std::string reply) {
        if (auto server = self.lock()) (*server)->deliver_later(serial, std::move(reply));
    };
}

void ControlServer::deliver_later(std::uint64_t serial, std::string reply) {
    for (const auto& client : clients_)
        if (client->serial == serial && client->phase == Client::Phase::awaiting)
            return client->deliver(std::move(reply));  // may close it
    log::debug("control-reply-unclaimed", {{"client", serial}});  // it hung up or timed out
}

void ControlServer::release_held() {
    std::vector<Client*> held;
    for (const auto& client : clients_)
        if (client->phase == Client::Phase::held) held.push_back(client.get());
    for (Client* client : held) client->release();  // may close it
}

void ControlServer::close_client(Client* client) {
    const uid_t uid = client->peer.uid;
    clients_.remove_if([client](const std::unique_ptr<Client>& c) { return c.get() == client; });
    forget(uid);
}

void ControlServer::forget(uid_t uid) {
    const std::optional<RefusalEpisode> ended = admission_.release(uid);
    if (!ended) return;
    log::notice("control-refusals-ended", {{"reason", refusal_reason(ended->verdict)},
                                           {"uid", static_cast<unsigned>(ended->uid)},
                                           {"refused", ended->refused},
                                           {"socket", path_}});
}

} // namespace forkd
