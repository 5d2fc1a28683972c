// SPDX-License-Identifier: MIT
#include "daemon/worker/worker_loop.hpp"

#include "common/base/monotonic_clock.hpp"
#include "common/base/peer_text.hpp"
#include "common/base/proxy_target.hpp"
#include "common/base/runtime_limits.hpp"
#include "daemon/admission/admission.hpp"
#include "daemon/admission/admission_gate.hpp"
#include "daemon/admission/policy_mapping.hpp"
#include "daemon/admission/source_counts.hpp"
#include "daemon/core/accept.hpp"
#include "daemon/core/admitted_claim.hpp"
#include "daemon/core/scoreboard.hpp"
#include "daemon/handlers/builtin_handlers.hpp"
#include "daemon/proxy/proxy_address.hpp"
#include "daemon/proxy/proxy_child.hpp"
#include "daemon/proxy/proxy_exit.hpp"
#include "daemon/proxy/proxy_session.hpp"
#include "daemon/spawner/peer_admission.hpp"
#include "daemon/spawner/proxy_intake.hpp"
#include "daemon/spawner/spawner_protocol.hpp"
#include "daemon/worker/event_connection.hpp"
#include "daemon/worker/libevent_guard.hpp"

#include <event2/event.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace forkd {
namespace {

using spawner::RefusalKind;
using spawner::Report;
using spawner::ReportKind;
using spawner::Request;
using spawner::RequestKind;
using spawner::make_report;
using worker::EventConnection;
using worker::EventPtr;
using worker::guarded;

// While accepting is held at the limit, how often room is looked for again: another worker's
// connection may have ended, which this one hears nothing of.
constexpr timeval room_recheck{0, 10000};
constexpr timeval idle_sweep{0, 250000};
// Reports waiting for a stalled master beyond which the worker stops accepting.
constexpr std::size_t max_pending_reports = 8192;
constexpr std::uint32_t default_buffer_size = 65536;

std::int64_t now_ms() { return monotonic_ns() / 1000000; }

class WorkerLoop final : public worker::ConnectionOwner {
public:
    WorkerLoop(UniqueFd control, Scoreboard& board)
        : base_(event_base_new()), control_(std::move(control)), board_(board), self_(getpid()),
          gate_(board.source_rate_storage(), board.source_rate_table_rate()) {
        if (!base_) throw std::runtime_error("event_base_new failed");
        control_in_.reset(event_new(base_.get(), control_.get(), EV_READ | EV_PERSIST, on_control, this));
        control_out_.reset(event_new(base_.get(), control_.get(), EV_WRITE, on_control_writable, this));
        flush_.reset(event_new(base_.get(), -1, 0, on_flush, this));
        recheck_.reset(evtimer_new(base_.get(), on_recheck, this));
        idle_.reset(event_new(base_.get(), -1, EV_PERSIST, on_idle_sweep, this));
        if (!control_in_ || !control_out_ || !flush_ || !recheck_ || !idle_)
            throw std::runtime_error("event_new failed");
    }

    int run() {
        event_add(control_in_.get(), nullptr);
        push(make_report(ReportKind::hello, 0, self_, spawner::protocol_version));
        event_base_dispatch(base_.get());
        return 0;
    }

    // ConnectionOwner
    void connection_traffic(EventConnection& c, std::uint64_t in, std::uint64_t out) override {
        if (in || out) board_.add_bytes(c.slot(), in, out);
    }

    void connection_done(EventConnection& c, int wait_status) override {
        end_served(c.id(), wait_status, c.bytes_in(), c.bytes_out());
    }

private:
    // A connection being served: a built-in service, or a proxy session (handler = proxy).
    struct Served {
        std::uint32_t slot = 0;
        SourceKey source;
        std::unique_ptr<EventConnection> builtin;
        std::unique_ptr<ProxySession> proxy;
        int closed_by = 0;  // the master's signal that ended it (kill, timeout, stop)
    };

    // Its slot and source freed, its end reported with exact bytes, and it is gone.
    void end_served(std::uint64_t id, int wait_status, std::uint64_t in, std::uint64_t out) {
        auto it = connections_.find(id);
        if (it == connections_.end()) return;
        Report exited = make_report(ReportKind::exited, id, self_, wait_status);
        exited.slot = it->second.slot;
        exited.bytes_in = in;
        exited.bytes_out = out;
        exited.bytes_known = 1;
        board_.reap(it->second.slot, id);
        push(exited);
        connections_.erase(it);  // closes its sockets
        update_listening();
    }

    struct Settings {
        bool accepting = false;
        HandlerKind handler = HandlerKind::echo;
        RuntimeLimits limits;
        std::uint32_t buffer_size = default_buffer_size;
        unsigned proxy_connect_timeout_s = 10;
        // handler = proxy: proxy-to resolved when the configuration came (getaddrinfo may
        // block the worker then, not per connection); nullopt if it could not be.
        std::optional<ProxyEndpoint> proxy_target;
    };
    struct Listener {
        UniqueFd fd;
        std::uint32_t tag = 0;
        char name[peer_text_size] = {};
        std::size_t name_length = 0;
        bool is_tcp = false;  // proxy-protocol applies to TCP listeners only
        EventPtr event;
        bool polled = false;
        WorkerLoop* loop = nullptr;
    };

    // ---- the master's socket ------------------------------------------------------------------

    static void on_control(evutil_socket_t, short, void* self) {
        guarded("control", [self] { static_cast<WorkerLoop*>(self)->read_requests(); });
    }
    static void on_control_writable(evutil_socket_t, short, void* self) {
        guarded("control", [self] { static_cast<WorkerLoop*>(self)->flush(); });
    }
    static void on_flush(evutil_socket_t, short, void* self) {
        guarded("flush", [self] { static_cast<WorkerLoop*>(self)->flush(); });
    }

    void read_requests() {
        for (;;) {
            switch (spawner::receive_datagram(control_.get(), *inbox_)) {
            case spawner::ReceiveStatus::would_block: return;
            case spawner::ReceiveStatus::closed:
            case spawner::ReceiveStatus::error:
                // The master is gone or retires this worker: its connections end with it.
                event_base_loopbreak(base_.get());
                return;
            case spawner::ReceiveStatus::ok: handle_datagram(); break;
            }
        }
    }

    void handle_datagram() {
        spawner::Records<Request>& requests = *requests_;
        if (!spawner::decode_requests(inbox_->view(), requests) || inbox_->fds_truncated) {
            std::fprintf(stderr, "forkd-worker: malformed request from the master; ignored\n");
            return;
        }
        std::size_t next_fd = 0;
        for (std::size_t i = 0; i < requests.count; ++i) {
            const Request& request = requests.items[i];
            switch (request.kind) {
            case RequestKind::configure: configure(request); break;
            case RequestKind::listener:
                if (next_fd < inbox_->fd_count) add_listener(std::move(inbox_->fds[next_fd++]), request.tag);
                break;
            case RequestKind::signal: end_connection(request); break;
            case RequestKind::policy:
                // Without it (no fd, or a block that does not map) the last policy stays.
                if (next_fd < inbox_->fd_count && !policy_.map(inbox_->fds[next_fd++].get()))
                    std::fprintf(stderr, "forkd-worker: the admission policy block could not be used\n");
                gate_.set_rules(policy_.view().rules);
                break;
            }
        }
        update_listening();
    }

    void configure(const Request& request) {
        settings_.accepting = request.accepting != 0;
        settings_.handler = request.handler;
        settings_.limits = spawner::limits_of(request);
        set_shared_limits(board_, gate_, settings_.limits);
        settings_.buffer_size = request.buffer_size ? request.buffer_size : default_buffer_size;
        settings_.proxy_connect_timeout_s = request.proxy_connect_timeout_s;
        settings_.proxy_target.reset();
        if (settings_.handler == HandlerKind::proxy) resolve_proxy(request.proxy_to);
        configure_proxy_protocol(request);
        listeners_.clear();
        pause_until_ms_ = 0;
        if (settings_.limits.idle_timeout_s) {
            event_add(idle_.get(), &idle_sweep);
        } else {
            event_del(idle_.get());
        }
        push(make_report(ReportKind::configured, request.generation));
    }

    void resolve_proxy(const char* text) {
        auto target = parse_proxy_target(text);
        auto endpoint = target ? resolve_proxy_target(*target) : Result<ProxyEndpoint>(target.error());
        if (!endpoint) {
            std::fprintf(stderr, "forkd-worker: proxy-to %s: %s\n", text, endpoint.error().message().c_str());
            return;
        }
        settings_.proxy_target = *endpoint;
    }

    void add_listener(UniqueFd fd, std::uint32_t tag) {
        auto listener = std::make_unique<Listener>();
        sockaddr_storage address{};
        socklen_t length = sizeof address;
        if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) length = 0;
        listener->name_length = format_sockaddr_to(listener->name, sizeof listener->name,
                                                   reinterpret_cast<const sockaddr*>(&address), length);
        listener->is_tcp = address.ss_family == AF_INET || address.ss_family == AF_INET6;
        listener->fd = std::move(fd);
        listener->tag = tag;
        listener->loop = this;
        // Non-blocking: several workers wake for one client, and all but one find nothing.
        fcntl(listener->fd.get(), F_SETFL, fcntl(listener->fd.get(), F_GETFL) | O_NONBLOCK);
        listener->event.reset(event_new(base_.get(), listener->fd.get(), EV_READ | EV_PERSIST,
                                        on_listener, listener.get()));
        if (!listener->event) throw std::runtime_error("event_new failed");
        listeners_.push_back(std::move(listener));
    }

    // A signal request: the master ends this connection (kill, connection-timeout, stop).
    void end_connection(const Request& request) {
        auto it = connections_.find(request.id);
        if (it == connections_.end() || it->second.slot != request.slot) return;
        Served& served = it->second;
        served.closed_by = request.signo;
        if (served.builtin) served.builtin->close_now(request.signo);
        else if (served.proxy) served.proxy->close();  // its done reports the end
    }

    // Reports go out once per loop turn (the flush event), max_records per datagram.
    void push(const Report& report) {
        pending_.push_back(report);
        if (!flush_scheduled_) {
            flush_scheduled_ = true;
            event_active(flush_.get(), 0, 0);
        }
    }

    void flush() {
        flush_scheduled_ = false;
        std::size_t sent = 0;
        while (sent < pending_.size()) {
            const std::size_t n = std::min(spawner::max_records, pending_.size() - sent);
            spawner::encode_reports(std::span<const Report>(pending_).subspan(sent, n), *outgoing_);
            const int rc = spawner::send_datagram(control_.get(), outgoing_->view());
            if (rc == -EAGAIN) {
                event_add(control_out_.get(), nullptr);
                break;
            }
            if (rc < 0) {
                event_base_loopbreak(base_.get());
                break;
            }
            sent += n;
        }
        pending_.erase(pending_.begin(), pending_.begin() + std::ptrdiff_t(sent));
        update_listening();
    }

    // ---- accepting ----------------------------------------------------------------------------

    bool room_for_more() const {
        return board_.has_free_slot() && admits_more(settings_.limits, board_.active()) &&
               pending_.size() < max_pending_reports;
    }

    bool paused() {
        if (pause_until_ms_ && now_ms() >= pause_until_ms_) pause_until_ms_ = 0;
        return pause_until_ms_ != 0;
    }

    // max-connection-rate with overload=wait: clients wait in the backlog until a token is there.
    std::int64_t rate_wait_ns() const { return gate_.rate_wait_ns(monotonic_ns()); }

    // Listeners polled while told to accept, not paused, with room and (overload=wait) a rate
    // token; held at the limit they rest, and room is looked for again shortly (room_recheck),
    // held by the rate until its next token.
    void update_listening() {
        const bool told = settings_.accepting && !listeners_.empty();
        const bool room = room_for_more();
        const std::int64_t rate_wait = told ? rate_wait_ns() : 0;
        const bool held = told && (paused() || !room || rate_wait);
        const bool open = told && !held;
        for (auto& listener : listeners_) {
            if (listener->polled == open) continue;
            if (open) event_add(listener->event.get(), nullptr);
            else event_del(listener->event.get());
            listener->polled = open;
        }
        set_waiting(told && !paused() && !room);
        if (held && !evtimer_pending(recheck_.get(), nullptr)) {
            timeval when = room_recheck;
            if (room && rate_wait) {
                const std::int64_t us = rate_wait / 1000 + 1;  // rounded up: the token is there then
                when = {time_t(us / 1000000), suseconds_t(us % 1000000)};
            }
            evtimer_add(recheck_.get(), &when);
        }
    }

    void set_waiting(bool waiting) {
        if (waiting == waiting_) return;
        waiting_ = waiting;
        Report change = make_report(ReportKind::limit_wait, 0, 0, waiting ? 1 : 0);
        change.start_ns = monotonic_ns();
        push(change);
    }

    static void on_recheck(evutil_socket_t, short, void* self) {
        guarded("recheck", [self] { static_cast<WorkerLoop*>(self)->update_listening(); });
    }

    static void on_listener(evutil_socket_t, short, void* arg) {
        auto* listener = static_cast<Listener*>(arg);
        guarded("accept", [listener] { listener->loop->accept_batch(*listener); });
    }

    void accept_batch(Listener& listener) {
        const AcceptOutcome outcome = forkd::accept_batch(
            listener.fd.get(), ConnectionMode::nonblocking, [this] { return room_for_more() && rate_wait_ns() == 0; },
            [&](AcceptedConnection c) {
                if (proxy_.expects_header(listener.is_tcp)) wait_for_header(listener, std::move(c));
                else serve(listener, std::move(c.fd), c.peer, c.peer_len);
                return true;
            });
        if (outcome.end == AcceptEnd::exhausted) pause_until_ms_ = now_ms() + accept_pause.count();
        if (outcome.end == AcceptEnd::exhausted || outcome.end == AcceptEnd::failed) {
            Report error = make_report(ReportKind::accept_error, 0, 0, outcome.error);
            error.tag = listener.tag;
            push(error);
        }
        update_listening();
    }

    void refuse(const Listener& listener, std::uint64_t id, const spawner::Peer& peer, RefusalKind why,
                int error = 0) {
        refuse(listener.tag, id, peer, why, error);
    }

    void refuse(std::uint32_t tag, std::uint64_t id, const spawner::Peer& peer, RefusalKind why, int error) {
        Report refused = make_report(ReportKind::refused, id, 0, error);
        refused.tag = tag;
        refused.peer = peer;
        refused.refusal = why;
        push(refused);
    }

    // Admission, a slot, the connection and its report.
    void serve(const Listener& listener, UniqueFd fd, const sockaddr_storage& address, socklen_t length) {
        const std::uint64_t id = board_.next_id();
        PeerAdmission admission = check_peer(gate_, fd.get(), address, length);
        const spawner::Peer& peer = admission.peer;
        const SourceKey& source = admission.source;
        if (!admission.decision.admitted())
            return refuse(listener, id, peer, spawner::refusal_kind(admission.decision.refusal),
                          admission.refusal_value());
        char text[peer_text_size];
        const sockaddr_storage* named = &address;
        sockaddr_storage none{};
        if (!peer.address_len) named = &none;
        const ucred cred{peer.cred_pid, peer.cred_uid, 0};
        const std::size_t text_length =
            format_peer_to(text, sizeof text, reinterpret_cast<const sockaddr*>(named), socklen_t(peer.address_len),
                           std::string_view(listener.name, listener.name_length), peer.has_cred ? &cred : nullptr);
        // Exact across workers: the count and the buckets are the scoreboard's.
        claim_for_peer(admission, board_, gate_, policy_, fd.get(), id, std::string_view(text, text_length),
                       monotonic_ns());
        if (!admission.decision.admitted())
            return refuse(listener, id, peer, spawner::refusal_kind(admission.decision.refusal));
        const auto slot = admission.slot;
        board_.set_pid(*slot, self_);
        Report started = make_report(ReportKind::started, id, self_);
        started.slot = *slot;
        started.tag = listener.tag;
        started.peer = peer;
        started.start_ns = board_.start_ns(*slot);
        push(started);
        Served& served = connections_[id];
        served.slot = *slot;
        served.source = source;
        if (settings_.handler == HandlerKind::proxy) return start_proxy(id, served, std::move(fd));
        try {
            worker::ConnectionParams params{id, *slot, source, settings_.handler, settings_.buffer_size};
            served.builtin = std::make_unique<EventConnection>(base_.get(), fd.get(), params, *this);
        } catch (const std::bad_alloc&) {
            return end_served(id, W_EXITCODE(builtin_exit_io_error, 0), 0, 0);
        }
        (void)fd.release();  // the bufferevent owns it now
        served.builtin->start();
    }

    // handler = proxy: the session copies both ways; its end is the connection's end, with a
    // failure's reason as a fork-mode proxy child's exit code says it (proxy_exit.hpp).
    void start_proxy(std::uint64_t id, Served& served, UniqueFd fd) {
        if (!settings_.proxy_target) return end_served(id, W_EXITCODE(proxy_exit_resolve_failed, 0), 0, 0);
        ProxySessionOptions options;
        options.buffer_size = settings_.buffer_size;
        options.connect_timeout_s = settings_.proxy_connect_timeout_s;
        options.idle_timeout_s = settings_.limits.idle_timeout_s;
        const std::uint32_t slot = served.slot;
        options.on_traffic = [this, slot](std::uint64_t in, std::uint64_t out) { board_.add_bytes(slot, in, out); };
        auto session = ProxySession::start(
            base_.get(), std::move(fd), *settings_.proxy_target, std::move(options),
            [this, id](const ProxySessionResult& result) {
                auto it = connections_.find(id);
                const int signo = it == connections_.end() ? 0 : it->second.closed_by;
                const int status = result.outcome == ProxyOutcome::killed && signo
                                       ? signo
                                       : W_EXITCODE(proxy_exit_code(result), 0);
                end_served(id, status, result.bytes_in, result.bytes_out);
            });
        if (!session) return end_served(id, W_EXITCODE(proxy_exit_transfer_error, 0), 0, 0);
        served.proxy = std::move(*session);
    }

    // ---- proxy-protocol: the header first, never waited for (proxy_intake.hpp) -----------------

    // The waits' fd exists from the first configure with proxy-protocol on, and stays.
    void configure_proxy_protocol(const Request& request) {
        proxy_.configure(request);
        if (proxy_.fd() >= 0 && !waits_in_) {
            waits_in_.reset(event_new(base_.get(), proxy_.fd(), EV_READ | EV_PERSIST, on_waits, this));
            waits_timer_.reset(evtimer_new(base_.get(), on_waits, this));
            if (!waits_in_ || !waits_timer_) throw std::runtime_error("event_new failed");
            event_add(waits_in_.get(), nullptr);
        }
        arm_header_deadline();
    }

    void wait_for_header(const Listener& listener, AcceptedConnection c) {
        proxy_.wait_for_header(std::move(c), listener.tag, now_ms(),
                               [this](ProxyWaitOutcome over) { header_wait_over(std::move(over)); });
        arm_header_deadline();
    }

    static void on_waits(evutil_socket_t, short, void* self) {
        guarded("proxy-header", [self] { static_cast<WorkerLoop*>(self)->finish_waits(); });
    }

    void finish_waits() {
        proxy_.finish_waits(now_ms(), [this](ProxyWaitOutcome over) { header_wait_over(std::move(over)); });
        arm_header_deadline();
        update_listening();
    }

    // The timer stands for the next header's deadline (none while nothing waits).
    void arm_header_deadline() {
        if (!waits_timer_) return;
        const int ms = proxy_.timeout_ms(now_ms());
        if (ms < 0) {
            evtimer_del(waits_timer_.get());
            return;
        }
        const timeval when{time_t(ms / 1000), suseconds_t(ms % 1000 * 1000)};
        evtimer_add(waits_timer_.get(), &when);
    }

    // Served as the header's source (LOCAL: as the balancer), or refused `proxy`.
    void header_wait_over(ProxyWaitOutcome outcome) {
        if (!outcome.ok)
            return refuse(outcome.tag, board_.next_id(), proxy_refusal_peer(outcome), RefusalKind::proxy,
                          proxy_refusal_value(outcome));
        for (const auto& listener : listeners_) {
            if (listener->tag != outcome.tag) continue;
            socklen_t length = 0;
            const sockaddr_storage& peer = proxied_peer(outcome, length);
            return serve(*listener, std::move(outcome.fd), peer, length);
        }
        // Its listener closed by a reload or a stop: the client goes.
    }

    // ---- idle-timeout -------------------------------------------------------------------------

    static void on_idle_sweep(evutil_socket_t, short, void* self) {
        guarded("idle", [self] { static_cast<WorkerLoop*>(self)->sweep_idle(); });
    }

    void sweep_idle() {
        const std::int64_t limit_ms = std::int64_t(settings_.limits.idle_timeout_s) * 1000;
        if (!limit_ms) return;
        const std::int64_t now = now_ms();
        std::vector<std::uint64_t> idle;
        // Proxy sessions judge their own idle-timeout.
        for (const auto& [id, served] : connections_)
            if (served.builtin && now - served.builtin->last_activity_ms() >= limit_ms) idle.push_back(id);
        for (std::uint64_t id : idle)
            if (auto it = connections_.find(id); it != connections_.end() && it->second.builtin)
                it->second.builtin->close_idle();
    }

    worker::EventBasePtr base_;
    UniqueFd control_;
    Scoreboard& board_;
    const pid_t self_;
    Settings settings_;
    EventPtr control_in_, control_out_, flush_, recheck_, idle_;
    ProxyIntake proxy_;                // proxy-protocol: settings and connections waiting for a header
    EventPtr waits_in_, waits_timer_;  // proxy_'s fd readable, its next deadline
    bool flush_scheduled_ = false;
    bool waiting_ = false;
    std::int64_t pause_until_ms_ = 0;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::unordered_map<std::uint64_t, Served> connections_;
    // Rules, limits and rates, as forkd-spawner admits; per-source counts and rate buckets in the
    // scoreboard, shared with the other workers.
    AdmissionGate gate_;
    PolicyMapping policy_;  // allow/deny and busy-message (the master's block)
    std::vector<Report> pending_;
    std::unique_ptr<spawner::Datagram> inbox_ = std::make_unique<spawner::Datagram>();
    std::unique_ptr<spawner::Records<Request>> requests_ = std::make_unique<spawner::Records<Request>>();
    std::unique_ptr<spawner::Encoded> outgoing_ = std::make_unique<spawner::Encoded>();
};

} // namespace

int run_worker(UniqueFd control, Scoreboard& board) { return WorkerLoop(std::move(control), board).run(); }

} // namespace forkd
