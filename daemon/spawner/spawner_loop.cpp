// SPDX-License-Identifier: MIT
#include "daemon/spawner/spawner_loop.hpp"

#include "common/base/monotonic_clock.hpp"
#include "common/base/peer_text.hpp"
#include "daemon/admission/admission.hpp"
#include "daemon/admission/admission_gate.hpp"
#include "daemon/admission/policy_mapping.hpp"
#include "daemon/core/accept.hpp"
#include "daemon/handlers/builtin_handlers.hpp"
#include "daemon/core/child_setup.hpp"
#include "daemon/core/not_inherited.hpp"
#include "daemon/proxy/proxy_address.hpp"
#include "daemon/proxy/proxy_child.hpp"
#include "daemon/spawner/peer_admission.hpp"
#include "daemon/spawner/pid_table.hpp"
#include "daemon/spawner/proxy_intake.hpp"
#include "daemon/core/scoreboard.hpp"
#include "daemon/admission/source_counts.hpp"
#include "daemon/core/admitted_claim.hpp"
#include "daemon/spawner/spawner_protocol.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <memory>
#include <span>

namespace forkd {
namespace {

using spawner::RefusalKind;
using spawner::Report;
using spawner::ReportKind;
using spawner::make_report;
using spawner::Request;
using spawner::RequestKind;

// What ps shows for a handler: "forkd-echo" and so on.
const char* process_name(HandlerKind kind) {
    switch (kind) {
    case HandlerKind::echo: return "forkd-echo";
    case HandlerKind::discard: return "forkd-discard";
    case HandlerKind::daytime: return "forkd-daytime";
    case HandlerKind::chargen: return "forkd-chargen";
    case HandlerKind::proxy: return "forkd-proxy";
    case HandlerKind::exec: break;
    }
    return "forkd-handler";
}

// A handler's name for PR_SET_NAME, copied onto the forking process's stack: a child reads its
// parent's stack pages without a fault, whereas the string constant's page is not mapped in a
// new child until it faults it in (once per handler).
struct ProcessName {
    char text[16] = {};
};

// The user and groups the master configured for the handlers (user/group).
struct HandlerIdentity {
    bool configured = false;  // false: handlers keep the spawner's
    bool set_groups = true;
    uid_t uid = 0;
    gid_t gid = 0;
    std::size_t group_count = 0;
    std::array<gid_t, spawner::max_groups> groups{};
};

// handler = proxy: where to and how, as the master configured it. A literal address or a UNIX
// path is resolved once, when configured; a host name by each child (the lookup blocks).
struct ProxySettings {
    char proxy_to[spawner::proxy_to_capacity] = {};
    bool resolved = false;
    ProxyEndpoint endpoint;
    std::uint32_t buffer_size = 65536;
    std::uint32_t connect_timeout_s = 10;
};

// What a handler child needs, copied onto the forking process's stack before the fork.
struct HandlerStart {
    HandlerKind handler;
    std::uint32_t slot;
    std::uint32_t idle_timeout_s;
    HandlerIdentity identity;
    const ProxySettings* proxy;  // the spawner's settings, in the stack frame the child inherits
};

int run_handler(const HandlerStart& start, Scoreboard& board) {
    if (start.handler != HandlerKind::proxy) {
        const BuiltinContext context{0, &board, start.slot, start.idle_timeout_s};
        return run_builtin_handler(start.handler, context);
    }
    const ProxySettings& proxy = *start.proxy;
    // Only fd 0 is the client's from here: the session owns it and closes it when done.
    close(1);
    const ProxyChildContext context{0,
                                    proxy.proxy_to,
                                    proxy.resolved ? &proxy.endpoint : nullptr,
                                    proxy.buffer_size,
                                    proxy.connect_timeout_s,
                                    start.idle_timeout_s,
                                    &board,
                                    start.slot};
    return run_proxy_child(context);
}

// Before the first byte is served, and before die_with_parent (a credential change clears the
// death signal).
bool take_identity(const HandlerIdentity& identity) {
    if (!identity.configured) return true;
    const ChildIdentity child{identity.uid, identity.gid, identity.groups.data(), identity.group_count,
                              identity.set_groups};
    return drop_identity(child) == IdentityStep::none;
}

[[noreturn]] void run_handler_child(const HandlerStart& start, const ProcessName& name, int connection,
                                    Scoreboard& board, pid_t spawner_pid) {
    // Its own pid too, not only the spawner's set_pid after the fork: the handler may serve its
    // first byte before the spawner runs again, and "forkctl list" must show it by then.
    board.set_pid(start.slot, getpid());
    reset_signal_state();
    prctl(PR_SET_NAME, name.text);
    // connection_to_stdio closes every fd above 2: the listeners and the master's socket too.
    if (!take_identity(start.identity) || !die_with_parent(spawner_pid) || !connection_to_stdio(connection))
        _exit(1);
    const int code = run_handler(start, board);
    // The client sees the close first; the counter drops before the process is gone, and the
    // master reconciles when the spawner reports the exit either way.
    close(0);
    close(1);
    board.release_from_child(start.slot);
    _exit(code);
}

// Reports not sent yet (the master's socket was full: it is slow or stopped), oldest first, in
// storage the caller provides. Reports of connections that got a slot (started, exited) must
// always fit: the spawner frees slots itself, so a stalled master could otherwise be owed
// reports without end. It accepts only while room_for_connection() holds: room for the new
// connection's two reports and for the exit report of every handler still running.
// Reports a flood could multiply (refusals, accept errors) are optional: they are queued only
// while fewer than optional_limit reports wait.
class ReportQueue {
public:
    static constexpr std::size_t optional_limit = 1024;
    static std::size_t storage_for(std::size_t slots) {
        return optional_limit + 2 * slots + 2 * spawner::max_records;
    }
    // Optional reports may take optional_limit entries, and a configured report one more.
    bool room_for_connection(std::size_t running) const {
        return size_ + running + 2 + 1 <= storage_.size() - optional_limit;
    }
    explicit ReportQueue(std::span<Report> storage) : storage_(storage) {}
    bool push(const Report& report) {
        if (size_ == storage_.size()) return false;
        storage_[size_++] = report;
        return true;
    }
    bool push_optional(const Report& report) { return size_ < optional_limit && push(report); }
    std::span<const Report> pending() const { return storage_.first(size_); }
    void drop_front(std::size_t n) {
        if (n == 0) return;
        std::memmove(storage_.data(), storage_.data() + n, (size_ - n) * sizeof(Report));
        size_ -= n;
    }
    bool empty() const { return size_ == 0; }

private:
    std::span<Report> storage_;
    std::size_t size_ = 0;
};

constexpr std::int64_t ns_per_ms = 1000000;
std::int64_t now_ms() { return monotonic_ns() / ns_per_ms; }

class SpawnerLoop {
public:
    SpawnerLoop(UniqueFd control, Scoreboard& board)
        : control_(std::move(control)), board_(board), self_(getpid()),
          pid_entries_(PidTable::entries_for(board.capacity())), running_(pid_entries_.items()),
          report_storage_(ReportQueue::storage_for(board.capacity())),
          pending_(report_storage_.items()), gate_(board.source_rate_storage(), board.source_rate_table_rate()) {}

    int run() {
        if (!set_up_signals()) return 1;
        pending_.push(make_report(ReportKind::hello, 0, self_, spawner::protocol_version));
        for (;;) {
            if (waiting_ && !at_limit()) set_waiting(false);
            report_waiting();
            if (!flush()) break;
            pollfd fds[3 + spawner::max_listeners];
            fds[0] = {control_.get(), short(POLLIN | (pending_.empty() ? 0 : POLLOUT)), 0};
            fds[1] = {signals_.get(), POLLIN, 0};
            // At the limit the listeners are still polled until a client is seen waiting: that
            // begins a wait (accept-waiting), and they rest until there is room again.
            const bool open = accept_open();
            const bool watch = !open && !waiting_ && at_limit();
            const std::size_t polled_listeners = open || watch ? listener_count_ : 0;
            for (std::size_t i = 0; i < polled_listeners; ++i) fds[2 + i] = {listeners_[i].fd.get(), POLLIN, 0};
            const bool waits = proxy_.waiting() != 0;
            const std::size_t waits_index = 2 + polled_listeners;
            if (waits) fds[waits_index] = {proxy_.fd(), POLLIN, 0};
            if (poll(fds, nfds_t(2 + polled_listeners + (waits ? 1 : 0)), poll_timeout_ms(open || watch)) < 0) {
                if (errno == EINTR) continue;
                std::fprintf(stderr, "forkd-spawner: poll: %s\n", std::strerror(errno));
                break;
            }
            if (fds[1].revents && !reap()) break;
            // Before the accepts and requests: a header that completed is served first.
            if (waits && (fds[waits_index].revents || proxy_.timeout_ms(now_ms()) == 0) && !finish_waits()) break;
            // Before the requests, which may replace the listeners these indices refer to.
            bool ok = true;
            for (std::size_t i = 0; ok && i < polled_listeners; ++i) {
                if (!fds[2 + i].revents) continue;
                if (open) ok = accept_batch(listeners_[i]);
                else set_waiting(true);
            }
            if (!ok) break;
            if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (!read_requests()) break;
            }
        }
        kill_all();
        return 0;
    }

private:
    // What the loop writes between two forks. A child inherits none of it (see
    // not_inherited.hpp) and must not touch it: whatever a child needs is copied to the stack
    // before the fork.
    struct Buffers {
        spawner::Datagram datagram;
        spawner::Records<Request> requests;
        spawner::Encoded outgoing;
    };

    // What the master last configured. Written only when it says so, rarely.
    struct Settings {
        bool accepting = false;
        HandlerKind handler = HandlerKind::echo;
        RuntimeLimits limits;  // admission's and idle-timeout; not connection-timeout (the master's)
        HandlerIdentity identity;
        ProxySettings proxy;
    };
    struct Listener {
        UniqueFd fd;
        std::uint32_t tag = 0;
        // Its address as the master names it ("unix:/run/x.sock"): a UNIX client's name starts so.
        char name[peer_text_size] = {};
        std::size_t name_length = 0;
        bool is_tcp = false;
    };

    // The spawner lives and dies with the master: the terminal's SIGINT, a hangup or a stray
    // SIGTERM must not take the built-in handlers down behind the master's back. Blocked rather
    // than ignored: dispositions stay default, so a child only has to clear its mask.
    bool set_up_signals() {
        sigset_t blocked;
        sigemptyset(&blocked);
        for (int signo : {SIGINT, SIGHUP, SIGTERM, SIGPIPE, SIGCHLD}) sigaddset(&blocked, signo);
        sigprocmask(SIG_BLOCK, &blocked, nullptr);
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        signals_.reset(signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
        if (!signals_) {
            std::fprintf(stderr, "forkd-spawner: signalfd: %s\n", std::strerror(errno));
            return false;
        }
        record_signal_dispositions();
        return true;
    }

    // ---- accepting ---------------------------------------------------------------------------

    bool paused() const { return pause_until_ms_ && now_ms() < pause_until_ms_; }
    // Until an accept pause ends, a PROXY header's deadline, or (not polling the listeners)
    // max-connection-rate with overload=wait has a token again.
    int poll_timeout_ms(bool polling_listeners) const {
        std::int64_t timeout = proxy_.timeout_ms(now_ms());
        const auto sooner = [&timeout](std::int64_t ms) { timeout = timeout < 0 ? ms : std::min(timeout, ms); };
        if (pause_until_ms_) sooner(std::max<std::int64_t>(0, pause_until_ms_ - now_ms()));
        if (!polling_listeners && settings_.accepting && listener_count_) {
            if (const std::int64_t wait = gate_.rate_wait_ns(monotonic_ns()))
                sooner((wait + ns_per_ms - 1) / ns_per_ms);
        }
        return int(std::min<std::int64_t>(timeout, 1000 * 1000));
    }
    // max-connection-rate with overload=wait: clients wait in the backlog until a token is there.
    bool rate_allows() const { return gate_.rate_wait_ns(monotonic_ns()) == 0; }

    // overload=wait holds accepts at max-connections; a full scoreboard always does, and so does
    // a report queue that a stalled master left full. Clients then wait in the backlog: a
    // connection accepted without a slot or a report could only be refused.
    bool room_for_more() const {
        return board_.has_free_slot() && admits_more(settings_.limits, board_.active()) &&
               pending_.room_for_connection(running_.size());
    }

    bool accept_open() {
        if (pause_until_ms_ && !paused()) pause_until_ms_ = 0;
        return settings_.accepting && listener_count_ && !pause_until_ms_ && room_for_more() && rate_allows();
    }

    // Told to accept, not paused by an accept error, but held back for want of room.
    bool at_limit() const {
        return settings_.accepting && listener_count_ && !paused() && !room_for_more();
    }

    // A wait: from the first client seen waiting at the limit until there is room again.
    void set_waiting(bool waiting) {
        waiting_ = waiting;
        waiting_changed_ns_ = monotonic_ns();
    }

    // The master logs and counts each wait from these reports. Optional like a refusal (a
    // stalled master's full queue is one thing that holds accepting back): a change that does
    // not fit is sent on a later turn, and a wait that began and ended meanwhile goes unreported.
    void report_waiting() {
        if (waiting_ == waiting_reported_) return;
        Report change = make_report(ReportKind::limit_wait, 0, 0, waiting_ ? 1 : 0);
        change.start_ns = waiting_changed_ns_;
        if (pending_.push_optional(change)) waiting_reported_ = waiting_;
    }

    // False only when the report queue overflowed.
    bool accept_batch(const Listener& listener) {
        const AcceptOutcome outcome = forkd::accept_batch(
            listener.fd.get(), ConnectionMode::blocking, [this] { return room_for_more() && rate_allows(); },
            [&](AcceptedConnection c) {
                if (expects_proxy_header(listener)) return wait_for_header(listener, std::move(c));
                return serve(listener, std::move(c.fd), c.peer, c.peer_len);
            });
        if (outcome.end == AcceptEnd::stopped) return false;
        if (outcome.end == AcceptEnd::exhausted) pause_until_ms_ = now_ms() + accept_pause.count();
        if (outcome.end == AcceptEnd::exhausted || outcome.end == AcceptEnd::failed) {
            Report error = make_report(ReportKind::accept_error, 0, 0, outcome.error);
            error.tag = listener.tag;
            pending_.push_optional(error);
        }
        return true;
    }

    // ---- proxy-protocol: the header first, never waited for -----------------------------------

    bool expects_proxy_header(const Listener& listener) const { return proxy_.expects_header(listener.is_tcp); }

    bool wait_for_header(const Listener& listener, AcceptedConnection c) {
        bool ok = true;
        proxy_.wait_for_header(std::move(c), listener.tag, now_ms(),
                               [&](ProxyWaitOutcome over) { ok = header_wait_over(std::move(over)) && ok; });
        return ok;
    }

    // False only when the report queue overflowed.
    bool finish_waits() {
        bool ok = true;
        proxy_.finish_waits(now_ms(), [&](ProxyWaitOutcome over) { ok = header_wait_over(std::move(over)) && ok; });
        return ok;
    }

    bool header_wait_over(ProxyWaitOutcome outcome) {
        if (!outcome.ok)
            return refuse(board_.next_id(), outcome.tag, proxy_refusal_peer(outcome), RefusalKind::proxy,
                          proxy_refusal_value(outcome));
        const Listener* listener = nullptr;
        for (std::size_t i = 0; i < listener_count_; ++i)
            if (listeners_[i].tag == outcome.tag) listener = &listeners_[i];
        if (!listener) return true;  // closed by a reload or a stop: the client goes
        socklen_t length = 0;
        const sockaddr_storage& peer = proxied_peer(outcome, length);
        return serve(*listener, std::move(outcome.fd), peer, length);
    }

    // The client's name in its slot, as the master would give it: "forkctl list" reads the
    // scoreboard, and must show the peer from the moment the slot is claimed.
    static std::size_t name_peer(const Listener& listener, const spawner::Peer& peer,
                                 char (&text)[peer_text_size]) {
        sockaddr_storage address{};  // family 0 on a UNIX listener
        std::memcpy(&address, peer.address, std::min<std::size_t>(peer.address_len, sizeof peer.address));
        const ucred cred{peer.cred_pid, peer.cred_uid, 0};
        return format_peer_to(text, sizeof text, reinterpret_cast<const sockaddr*>(&address),
                              socklen_t(peer.address_len), std::string_view(listener.name, listener.name_length),
                              peer.has_cred ? &cred : nullptr);
    }

    // Admission, a slot, the fork and its report. The connection closes here: the handler
    // holds its own copy. False only when the report queue overflowed.
    bool serve(const Listener& listener, UniqueFd connection, const sockaddr_storage& address,
               socklen_t length) {
        const std::uint32_t tag = listener.tag;
        const std::uint64_t id = board_.next_id();
        PeerAdmission admission = check_peer(gate_, connection.get(), address, length);
        const spawner::Peer& peer = admission.peer;
        if (admission.decision.admitted()) {
            // The claim fails (limit) only if another acceptor took the last free slot since
            // room_for_more().
            char name[peer_text_size];
            const std::size_t name_length = name_peer(listener, peer, name);
            claim_for_peer(admission, board_, gate_, policy_, connection.get(), id,
                           std::string_view(name, name_length), monotonic_ns());
        }
        if (!admission.decision.admitted())
            return refuse(id, tag, peer, spawner::refusal_kind(admission.decision.refusal),
                          admission.refusal_value());
        const auto slot = admission.slot;
        const pid_t pid = fork_handler(*slot, connection.get());
        connection.reset();
        if (pid < 0) {
            board_.reap(*slot);
            return refuse(id, tag, peer, RefusalKind::fork_failed, -pid);
        }
        if (!running_.insert({pid, id, *slot})) return overflowed();
        Report started = make_report(ReportKind::started, id, pid);
        started.slot = *slot;
        started.start_ns = board_.start_ns(*slot);
        started.tag = tag;
        started.peer = peer;
        return pending_.push(started) || overflowed();
    }

    // Refusals are counted even when a flood leaves no room to report each one.
    bool refuse(std::uint64_t id, std::uint32_t tag, const spawner::Peer& peer, RefusalKind why, int error) {
        Report refused = make_report(ReportKind::refused, id, 0, error);
        refused.tag = tag;
        refused.peer = peer;
        refused.refusal = why;
        if (!pending_.push_optional(refused))
            ++unlogged_[std::size_t(why)];
        return true;
    }

    // The handler's pid, or -errno.
    pid_t fork_handler(std::uint32_t slot, int connection) {
        const HandlerStart start{settings_.handler, slot, settings_.limits.idle_timeout_s, settings_.identity,
                                 &settings_.proxy};
        ProcessName name;
        std::strncpy(name.text, process_name(start.handler), sizeof name.text - 1);
        // _Fork: no atfork handlers and no re-initialisation of glibc's locks in the child,
        // which this single-threaded process does not need, and whose page writes would each
        // cost the child a copy-on-write fault.
        const pid_t pid = _Fork();
        if (pid == 0) run_handler_child(start, name, connection, board_, self_);
        if (pid < 0) return -errno;
        board_.set_pid(slot, pid);  // shared memory: no copy-on-write
        return pid;
    }

    // ---- the master's requests ---------------------------------------------------------------

    // One datagram per turn of the loop. False once the master has gone (its end closed) or
    // spoke nonsense.
    bool read_requests() {
        spawner::Datagram& datagram = buffers_->datagram;
        switch (spawner::receive_datagram(control_.get(), datagram)) {
        case spawner::ReceiveStatus::would_block: return true;
        case spawner::ReceiveStatus::closed: return false;
        case spawner::ReceiveStatus::error:
            std::fprintf(stderr, "forkd-spawner: recvmsg: %s\n", std::strerror(errno));
            return false;
        case spawner::ReceiveStatus::ok: break;
        }
        if (!spawner::decode_requests(datagram.view(), buffers_->requests)) {
            std::fprintf(stderr, "forkd-spawner: malformed request from the master\n");
            return false;
        }
        std::size_t next_fd = 0;
        for (const Request& request : buffers_->requests) {
            switch (request.kind) {
            case RequestKind::configure:
                if (!configure(request)) return false;
                break;
            case RequestKind::listener:
                // No fd: the kernel dropped it (MSG_CTRUNC), which only happens when we are out
                // of fds. That listener is then served by nobody until the next configure.
                if (next_fd < datagram.fd_count)
                    add_listener(std::move(datagram.fds[next_fd++]), request.tag);
                break;
            case RequestKind::policy:
                // Without it (no fd, or a block that does not map) the last policy stays.
                if (next_fd < datagram.fd_count && !policy_.map(datagram.fds[next_fd++].get()))
                    std::fprintf(stderr, "forkd-spawner: the admission policy block could not be used\n");
                gate_.set_rules(policy_.view().rules);
                break;
            case RequestKind::signal: forward_signal(request); break;
            }
        }
        return true;
    }

    void add_listener(UniqueFd fd, std::uint32_t tag) {
        Listener& listener = listeners_[listener_count_++];
        sockaddr_storage address{};
        socklen_t length = sizeof address;
        if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) length = 0;
        listener.name_length = format_sockaddr_to(listener.name, sizeof listener.name,
                                                  reinterpret_cast<const sockaddr*>(&address), length);
        listener.is_tcp = address.ss_family == AF_INET || address.ss_family == AF_INET6;
        listener.fd = std::move(fd);
        listener.tag = tag;
    }

    static HandlerIdentity identity_of(const Request& request) {
        HandlerIdentity identity;
        identity.configured = request.has_identity != 0;
        identity.set_groups = request.set_groups != 0;
        identity.uid = request.uid;
        identity.gid = request.gid;
        identity.group_count = request.group_count;
        std::copy_n(request.groups, request.group_count, identity.groups.begin());
        return identity;
    }

    // Replaces the settings and the listeners (which follow the request in its datagram).
    bool configure(const Request& request) {
        settings_.accepting = request.accepting != 0;
        settings_.handler = request.handler;
        settings_.limits = spawner::limits_of(request);
        set_shared_limits(board_, gate_, settings_.limits);
        settings_.identity = identity_of(request);
        configure_proxy(request);
        // Waiting connections stay: their listeners keep their tags across configures.
        proxy_.configure(request);
        for (std::size_t i = 0; i < listener_count_; ++i) listeners_[i].fd.reset();
        listener_count_ = 0;
        pause_until_ms_ = 0;
        return pending_.push(make_report(ReportKind::configured, request.generation)) ||
               overflowed();
    }

    // Literal addresses and UNIX paths need no lookup, so they are resolved here, once; a host
    // name is left to each child, whose lookup may block.
    void configure_proxy(const Request& request) {
        ProxySettings& proxy = settings_.proxy;
        proxy = ProxySettings{};
        if (request.handler != HandlerKind::proxy) return;
        std::memcpy(proxy.proxy_to, request.proxy_to, sizeof proxy.proxy_to);
        proxy.proxy_to[sizeof proxy.proxy_to - 1] = 0;
        proxy.buffer_size = request.buffer_size;
        proxy.connect_timeout_s = request.proxy_connect_timeout_s;
        const auto target = parse_proxy_target(proxy.proxy_to);
        if (!target || !(target->is_unix() || is_address_literal(target->host))) return;
        if (auto endpoint = resolve_proxy_target(*target)) {
            proxy.endpoint = *endpoint;
            proxy.resolved = true;
        }
    }

    // The slot's pid (set_pid at the fork), if that handler is not reaped yet, so its pid cannot
    // have been reused, and still serves that connection (the slot may have been reused since
    // the master sent this).
    void forward_signal(const Request& request) {
        if (request.slot >= board_.capacity()) return;
        const pid_t pid = board_.pid(request.slot);
        const PidTable::Entry* running = running_.find(pid);
        if (running && running->id == request.id) ::kill(pid, request.signo);
    }

    // ---- handlers' exits and reports ---------------------------------------------------------

    bool reap() {
        signalfd_siginfo info;
        while (read(signals_.get(), &info, sizeof info) == sizeof info) {
        }
        // SIGCHLD coalesces: reap until nothing is left.
        for (;;) {
            int status = 0;
            const pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0) break;
            const auto handler = running_.take(pid);
            if (!handler) continue;
            Report exited = make_report(ReportKind::exited, handler->id, pid, status);
            exited.slot = handler->slot;
            // Freed here, not when the master reads the report: a stalled master must not hold
            // every slot "closing" (the spawner would have none left to claim).
            if (const auto traffic = board_.reap(handler->slot, handler->id)) {
                exited.bytes_in = traffic->in;
                exited.bytes_out = traffic->out;
                exited.bytes_known = traffic->known ? 1 : 0;
            }
            if (!pending_.push(exited)) return overflowed();
        }
        return true;
    }

    // Cannot happen while accepting waits for room_for_connection(): say so and stop. The master counts this spawner's connections as lost and starts another.
    bool overflowed() {
        std::fprintf(stderr, "forkd-spawner: more handlers or reports than the scoreboard has slots\n");
        return false;
    }

    // Refusals a flood left unreported, as counts, once there is room again.
    void queue_unlogged() {
        for (std::size_t why = 0; why < unlogged_.size(); ++why) {
            if (!unlogged_[why]) continue;
            Report summary = make_report(ReportKind::refusals_unlogged, 0, 0,
                                    int(std::min<std::uint64_t>(unlogged_[why], INT32_MAX)));
            summary.refusal = RefusalKind(why);
            if (!pending_.push_optional(summary)) return;
            unlogged_[why] -= std::uint64_t(summary.value);
        }
    }

    // Sends what is pending, max_records per datagram. False once the master is gone.
    bool flush() {
        queue_unlogged();
        std::size_t sent = 0;
        const auto pending = pending_.pending();
        while (sent < pending.size()) {
            const std::size_t n = std::min(spawner::max_records, pending.size() - sent);
            spawner::encode_reports(pending.subspan(sent, n), buffers_->outgoing);
            const int rc = spawner::send_datagram(control_.get(), buffers_->outgoing.view());
            if (rc == -EAGAIN) break;
            if (rc < 0) {
                if (rc != -EPIPE && rc != -ECONNRESET)
                    std::fprintf(stderr, "forkd-spawner: sendmsg: %s\n", std::strerror(-rc));
                return false;
            }
            sent += n;
        }
        pending_.drop_front(sent);
        return true;
    }

    // The master is gone or asked us to go: nothing may outlive it.
    void kill_all() {
        running_.for_each([](const PidTable::Entry& e) { ::kill(e.pid, SIGKILL); });
        running_.for_each([](const PidTable::Entry& e) { waitpid(e.pid, nullptr, 0); });
    }

    UniqueFd control_;
    UniqueFd signals_;
    Scoreboard& board_;
    const pid_t self_;
    Settings settings_;
    std::array<Listener, spawner::max_listeners> listeners_;
    std::size_t listener_count_ = 0;
    std::int64_t pause_until_ms_ = 0;  // 0: not paused
    bool waiting_ = false;             // a client waits at the limit (see set_waiting)
    std::int64_t waiting_changed_ns_ = 0;
    bool waiting_reported_ = false;    // what the master was last told
    NotInherited<Buffers> buffers_;
    NotInherited<PidTable::Entry> pid_entries_;
    PidTable running_;  // running handlers → connection id and slot
    NotInherited<Report> report_storage_;
    ReportQueue pending_;
    // Refusals not reported one by one, by RefusalKind. Written only under a flood of them.
    std::array<std::uint64_t, 8> unlogged_{};  // by RefusalKind
    PolicyMapping policy_;               // allow/deny and busy-message (the master's block)
    // Rules, limits and rates, in one order; per-source counts and rate buckets in the scoreboard,
    // shared with every other acceptor.
    AdmissionGate gate_;
    ProxyIntake proxy_;  // proxy-protocol: the settings and the connections waiting for a header
};

} // namespace

int run_spawner(UniqueFd control, Scoreboard& board) { return SpawnerLoop(std::move(control), board).run(); }

} // namespace forkd
