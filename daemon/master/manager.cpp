// SPDX-License-Identifier: MIT
// The master's event loop: accepting, spawning, reaping, timeouts and stopping.
// Control requests and reloads live in manager_control.cpp.
#include "daemon/master/manager.hpp"

#include "common/log.hpp"
#include "common/base/error.hpp"
#include "common/base/monotonic_clock.hpp"
#include "daemon/master/config_watch.hpp"
#include "daemon/control/control_server.hpp"
#include "daemon/exec/exec_launcher.hpp"
#include "daemon/core/accept.hpp"
#include "daemon/core/exit_status.hpp"
#include "daemon/event_loop/event_sources.hpp"
#include "daemon/master/handler_stderr.hpp"
#include "daemon/master/notify.hpp"
#include "daemon/master/spawner_link.hpp"
#include "daemon/core/tcp_activity.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace forkd {
namespace {

constexpr std::uint64_t usec_per_sec = 1000000;
constexpr std::uint64_t kill_grace_usec = 2 * usec_per_sec;     // SIGTERM → SIGKILL
constexpr std::uint64_t accept_pause_usec = std::chrono::microseconds(accept_pause).count();
constexpr std::uint64_t housekeeping_usec = 1 * usec_per_sec;
// Without a configured limit the scoreboard still needs a size.
constexpr std::size_t minimum_capacity = 4096;
// A spawner that died before it said hello is broken (a missing or mismatched binary): retry
// at this pace rather than in a tight loop.
constexpr std::uint64_t spawner_retry_usec = 1 * usec_per_sec;
// Kept free beyond what one exec'd connection needs, so that forkctl still gets an answer and a
// reload its config file when connections take every other descriptor.
constexpr int spare_descriptors = 4;

void check(int rc, const char* what) {
    if (rc < 0) throw std::system_error(-rc, std::generic_category(), what);
}

Refusal refusal_of(spawner::RefusalKind kind) {
    switch (kind) {
    case spawner::RefusalKind::limit: return Refusal::limit;
    case spawner::RefusalKind::per_source: return Refusal::per_source;
    case spawner::RefusalKind::fork_failed: return Refusal::fork_failed;
    }
    return Refusal::none;
}

} // namespace

std::vector<int> Manager::handled_signals() { return {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1}; }

Manager::Manager(CommandLine command_line, Config config)
    : command_line_(std::move(command_line)),
      config_(std::move(config)),
      admission_(config_.limits),
      scoreboard_(std::max<std::size_t>(config_.limits.max_connections, minimum_capacity)),
      master_pid_(getpid()),
      started_ns_(monotonic_ns()) {
    if (config_.handler == HandlerKind::exec) exec_plan_ = build_exec_plan(config_);
    sd_event* raw = nullptr;
    check(sd_event_new(&raw), "sd_event_new");
    event_.reset(raw);
    notifier_ = Notifier::from_environment(event_.get());
}

Manager::~Manager() {
    // Sources reference the loop: drop them before it.
    control_.reset();
    config_watch_.reset();
    children_.clear();
    spawner_retry_.reset();
    spawner_.reset();
    lingering_stderr_.clear();
    for (auto& listener : listeners_) close_listener(*listener);
    listeners_.clear();
    signal_sources_.clear();
    housekeeping_.reset();
    accept_pause_.reset();
    stop_timer_.reset();
    notifier_.reset();
}

void Manager::open() {
    for (int signo : handled_signals())
        signal_sources_.push_back(event_loop::value_or_throw(event_loop::add_signal(
            event_.get(), signo, "signal",
            [this](const signalfd_siginfo& info) { on_signal(int(info.ssi_signo)); })));
    // Always, whatever the handler: a reload may switch to a built-in one.
    spawner_ = std::make_unique<SpawnerProcess>(
        event_.get(), scoreboard_,
        [this](std::span<const spawner::Report> reports) { on_spawner_reports(reports); });
    spawner_->start_and_wait();
    log::info("spawner-started", {{"pid", long(spawner_->pid())}});
    for (const auto& address : config_.listen)
        add_listeners(open_listeners(address, config_.backlog));
    if (spawner_accepts() && listeners_.size() > spawner::max_listeners)
        throw ConfigError("listen: " + std::to_string(listeners_.size()) +
                          " listening sockets; a built-in handler serves at most " +
                          std::to_string(spawner::max_listeners));

    housekeeping_ = event_loop::value_or_throw(event_loop::add_periodic(
        event_.get(), housekeeping_usec, "housekeeping", [this] { on_housekeeping(); }));

    control_gid_ = resolve_control_group(config_.control_group);
    control_ = std::make_unique<ControlServer>(event_.get(), config_.control_socket, *this);
    if (config_.watch_config) watch_config_file();
}

int Manager::run() {
    publish_status();
    notifier_->ready();
    log::notice("started", {{"pid", long(master_pid_)},
                            {"handler", std::string(handler_name(config_.handler))},
                            {"max_connections", config_.limits.max_connections}});
    const int rc = sd_event_loop(event_.get());
    for (auto& listener : listeners_) close_listener(*listener);
    listeners_.clear();
    log::notice("stopped", {{"accepted", totals_.accepted()}, {"completed", totals_.completed()},
                            {"killed", totals_.killed()}, {"failed", totals_.failed()}});
    return rc < 0 ? 3 : 0;
}

// ---- listeners -------------------------------------------------------------------------------

void Manager::add_listeners(std::vector<ListenSocket> sockets) {
    for (auto& socket : sockets) {
        auto listener = std::make_unique<Listener>();
        listener->tag = next_listener_tag_++;
        listener->socket = std::move(socket);
        listener->source = event_loop::value_or_throw(event_loop::add_io(
            event_.get(), listener->socket.fd.get(), EPOLLIN, "listener",
            [this, &ready = *listener] { accept_batch(ready); }));
        log::notice("listening", {{"address", listener->socket.bound}});
        listeners_.push_back(std::move(listener));
    }
    update_accepting();
}

void Manager::close_listener(Listener& listener) {
    listener.source.reset();
    if (listener.socket.is_unix && !listener.socket.unix_path.empty() && listener.socket.fd)
        unlink(listener.socket.unix_path.c_str());
    listener.socket.fd.reset();
}

// Accepts are paused exactly while the pause timer exists.
bool Manager::accepting() const { return state_ == State::running && !accept_pause_; }

// overload=wait at max-connections, and always at the scoreboard's capacity (max-connections 0).
bool Manager::room_for_more() const {
    const auto active = scoreboard_.active();
    return admission_.should_accept(active) && scoreboard_.has_free_slot();
}

// After a change of state, limits, handler or listeners: both the master and the spawner.
void Manager::update_accepting() {
    update_master_accepting();
    configure_spawner();
}

// On the per-connection path (a slot freed, an accept pause): only what the master polls. With a
// built-in handler the spawner accepts, and the master's own listener sources stay off.
void Manager::update_master_accepting() {
    const bool on = !spawner_accepts() && accepting() && room_for_more();
    for (auto& listener : listeners_)
        sd_event_source_set_enabled(listener->source.get(), on ? SD_EVENT_ON : SD_EVENT_OFF);
}

void Manager::pause_accepting_after(int err) {
    log::warning("accept-paused", {{"error", std::strerror(err)},
                                   {"resume_ms", accept_pause_usec / 1000}});
    // Without a timer there is no pause: better to retry at once than to stop for good.
    if (auto timer = event_loop::add_timer(event_.get(), accept_pause_usec, "accept-pause", [this] {
            accept_pause_.reset();
            update_master_accepting();
        }))
        accept_pause_ = std::move(*timer);
    update_master_accepting();
}

// ---- accepting -------------------------------------------------------------------------------

void Manager::accept_batch(Listener& listener) {
    const AcceptOutcome outcome = forkd::accept_batch(
        listener.socket.fd.get(), ConnectionMode::blocking,
        [this] { return accepting() && room_for_more(); },
        [&](AcceptedConnection c) {
            handle_connection(listener, std::move(c.fd), c.peer, c.peer_len);
            return true;
        },
        exec_descriptors_per_connection + spare_descriptors);
    if (outcome.end == AcceptEnd::exhausted) pause_accepting_after(outcome.error);
    if (outcome.end == AcceptEnd::failed)
        log::warning("accept-failed", {{"address", listener.socket.bound},
                                       {"error", errno_text(outcome.error)}});
    update_master_accepting();
}

ConnectionInfo Manager::describe_connection(const Listener& listener, int fd,
                                            const sockaddr_storage& peer, socklen_t peer_len) {
    ConnectionInfo info;
    info.id = scoreboard_.next_id();
    info.peer = peer;
    info.peer_len = peer_len;
    std::optional<ucred> cred;
    if (peer.ss_family == AF_UNIX) {
        ucred c{};
        socklen_t len = sizeof c;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) == 0) cred = c;
    }
    describe_peer(listener.socket.bound, reinterpret_cast<const sockaddr*>(&peer), peer_len, cred, info);
    info.local_len = sizeof info.local;
    getsockname(fd, reinterpret_cast<sockaddr*>(&info.local), &info.local_len);
    return info;
}

void Manager::describe_peer(const std::string& listener_address, const sockaddr* address,
                            socklen_t length, const std::optional<ucred>& cred, ConnectionInfo& info) {
    info.is_unix = address->sa_family == AF_UNIX || address->sa_family == AF_UNSPEC;
    info.peer_cred = cred;
    if (info.is_unix) {
        info.peer_text = listener_address;
        if (cred) {
            info.peer_text += " uid=" + std::to_string(cred->uid) + " pid=" + std::to_string(cred->pid);
            info.source = "uid:" + std::to_string(cred->uid);
        }
        return;
    }
    info.peer_text = format_sockaddr(address, length);
    info.source = host_of(address, length);
}

void Manager::refuse(std::uint64_t id, const std::string& peer, Refusal reason) {
    totals_.refused(reason);
    unsigned limit = 0;
    if (reason == Refusal::limit) limit = config_.limits.max_connections;
    if (reason == Refusal::per_source) limit = config_.limits.max_per_source;
    log::warning("refused", {{"id", id}, {"peer", peer},
                             {"reason", std::string(refusal_name(reason))}, {"limit", limit},
                             {"active", scoreboard_.active()}});
}

void Manager::refuse_fork(std::uint64_t id, const std::string& peer, const char* error) {
    refuse(id, peer, Refusal::fork_failed);
    log::err("fork-failed", {{"id", id}, {"error", error}});
}

// Every connection that passes admission and gets a slot counts as accepted, and ends as
// completed, killed or failed (a handler that could not be started is failed). The master
// accepts for exec'd handlers only; the spawner's connections arrive as reports.
void Manager::handle_connection(const Listener& listener, UniqueFd fd,
                                const sockaddr_storage& peer, socklen_t peer_len) {
    ConnectionInfo info = describe_connection(listener, fd.get(), peer, peer_len);
    if (Refusal r = admission_.decide(scoreboard_.active(), info.source); r != Refusal::none)
        return refuse(info.id, info.peer_text, r);
    auto slot = scoreboard_.claim(info.id, info.peer_text);
    if (!slot) return refuse(info.id, info.peer_text, Refusal::limit);
    info.slot = *slot;

    Child child;
    if (!start_handler(info, fd, child)) {
        scoreboard_.reap(info.slot);
        return;
    }
    Child& added = add_child(info, monotonic_ns());
    added.pid = child.pid;
    added.tcp_view = std::move(child.tcp_view);
    added.stderr_log = std::move(child.stderr_log);
    exec_pids_.emplace(added.pid, added.id);
}

// The master's record of a started connection: accounting, per-source, the connection-timeout.
Manager::Child& Manager::add_child(const ConnectionInfo& info, std::int64_t started_ns) {
    totals_.started();
    Child child;
    child.id = info.id;
    child.slot = info.slot;
    child.peer = info.peer_text;
    child.source = info.source;
    child.started_ns = started_ns;
    admission_.started(child.source);
    if (log::enabled(log::Level::debug))
        log::debug("connection-start", {{"id", child.id}, {"peer", child.peer}});
    auto [it, inserted] = children_.emplace(child.id, std::move(child));
    if (config_.limits.connection_timeout_s)
        arm_deadline(it->second, config_.limits.connection_timeout_s * usec_per_sec);
    return it->second;
}

// An exec'd handler, started with the master's vfork-style clone.
bool Manager::start_handler(const ConnectionInfo& info, UniqueFd& fd, Child& child) {
    auto spawned = spawn_exec_handler(*exec_plan_, info, fd.get());
    if (auto* failed = std::get_if<SpawnFailure>(&spawned)) {
        if (failed->fork_failed) refuse(info.id, info.peer_text, Refusal::fork_failed);
        else totals_.start_failed();
        log::err("handler-failed", {{"id", info.id}, {"peer", info.peer_text}, {"error", failed->error.message()}});
        return false;
    }
    auto& handler = std::get<SpawnedHandler>(spawned);
    child.pid = handler.pid;
    scoreboard_.set_pid(child.slot, child.pid);
    try {
        child.stderr_log = std::make_unique<HandlerStderr>(event_.get(),
                                                           std::move(handler.stderr_read), info.id);
    } catch (const std::exception& e) {
        log::warning("handler-stderr-lost", {{"id", info.id}, {"error", e.what()}});
    }
    if (!info.is_unix) child.tcp_view = UniqueFd(fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
    return true;
}

// ---- timeouts and ending connections ---------------------------------------------------------

void Manager::arm_deadline(Child& child, std::uint64_t after_usec) {
    auto timer = event_loop::add_timer(event_.get(), after_usec, "connection-deadline",
                                       [this, &child] { on_child_deadline(child); });
    if (!timer) {
        log::err("timer-failed", {{"id", child.id}});
        return;
    }
    child.deadline = std::move(*timer);
}

void Manager::signal_child(const Child& child, int signo) {
    if (child.served_by == ServedBy::spawner) {
        if (spawner_) spawner_->signal(child.id, child.slot, signo);
    } else {
        ::kill(child.pid, signo);
    }
}

void Manager::on_child_deadline(Child& child) {
    if (child.term_sent) {
        signal_child(child, SIGKILL);
        child.deadline.reset();
        return;
    }
    end_child(child, Ending::timeout, SIGTERM);
}

void Manager::end_child(Child& child, Ending reason, int signo) {
    if (!child.ended_by) child.ended_by = reason;
    // The master's dup keeps the connection open: let the client see the end even if a
    // grandchild of the handler still holds the socket.
    if (child.tcp_view) shutdown(child.tcp_view.get(), SHUT_RDWR);
    signal_child(child, signo);
    if (signo == SIGKILL) return;
    child.term_sent = true;
    arm_deadline(child, kill_grace_usec);
}

// ---- reaping ---------------------------------------------------------------------------------

void Manager::on_signal(int signo) {
    switch (signo) {
    case SIGCHLD: reap_children(); break;
    case SIGHUP: (void)reload(); break;  // a failure is logged by reload()
    case SIGUSR1:  // logrotate moved log-target's file away
        if (Status s = log::reopen_file(); !s) log::err("log-reopen-failed", {{"error", s.error().message()}});
        break;
    case SIGTERM:
    case SIGINT: begin_stop(); break;
    default: break;
    }
}

// SIGCHLD coalesces: one signal may stand for hundreds of exits, so reap until none is left.
// The master's children are the spawner and exec'd handlers; built-in handlers are the
// spawner's, which reaps them and reports each exit (on_spawner_reports).
void Manager::reap_children() {
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        if (spawner_ && pid == spawner_->pid()) {
            on_spawner_exit(status);
            continue;
        }
        auto it = exec_pids_.find(pid);
        if (it == exec_pids_.end()) continue;
        const std::uint64_t id = it->second;
        exec_pids_.erase(it);
        if (auto child = children_.find(id); child != children_.end())
            finish_child(child->second, pid, status);
    }
    update_master_accepting();
    maybe_finish_stop();
}

void Manager::finish_child(Child& child, pid_t pid, int wait_status) {
    if (child.tcp_view) {
        if (auto activity = read_tcp_activity(child.tcp_view.get()))
            scoreboard_.set_bytes(child.slot, activity->bytes_in, activity->bytes_out);
    }
    // A built-in handler's slot is the spawner's to free (it may serve another connection by now).
    const auto held = scoreboard_.reap(child.slot, child.id);
    const auto traffic = child.reported_traffic.value_or(held.value_or(Scoreboard::Traffic{}));
    admission_.ended(child.source);
    // A handler the master did not end completed, or crashed if it died of a signal.
    const Ending ending =
        child.ended_by.value_or(WIFSIGNALED(wait_status) ? Ending::crashed : Ending::completed);
    totals_.ended(ending);
    const auto duration_ms = (monotonic_ns() - child.started_ns) / 1000000;
    if (log::enabled(log::Level::info))
        log::info("connection-end", {{"id", child.id}, {"peer", child.peer}, {"pid", long(pid)},
                                 {"duration_ms", long(duration_ms)},
                                 {"exit", describe_wait_status(wait_status)},
                                 {"bytes_in", traffic.in}, {"bytes_out", traffic.out},
                                 {"ended_by", ending_name(ending)}});
    if (child.stderr_log && !child.stderr_log->finished())
        lingering_stderr_.push_back(std::move(child.stderr_log));
    children_.erase(child.id);
}

// ---- the spawner -----------------------------------------------------------------------------

// ---- the spawner: what it accepts ------------------------------------------------------------

// It accepts while the daemon runs with a built-in handler; otherwise it is told to accept
// nothing and so drops its copies of the listening sockets (a stop must close them for good).
// Its per-source counts cover its own connections: after a reload from exec to a built-in
// handler, the exec'd ones still running are not counted against their sources.
void Manager::configure_spawner() {
    if (!spawner_ || !spawner_->running()) return;
    const bool on = spawner_accepts() && state_ == State::running;
    spawner::Request settings;
    settings.kind = spawner::RequestKind::configure;
    settings.accepting = on;
    settings.handler = spawner_accepts() ? config_.handler : HandlerKind::echo;
    settings.idle_timeout_s = config_.limits.idle_timeout_s;
    settings.max_connections = config_.limits.max_connections;
    settings.max_per_source = config_.limits.max_per_source;
    settings.reject_at_limit = config_.limits.overload == OverloadPolicy::reject;
    std::vector<SpawnerProcess::ListenerRef> refs;
    if (on) {
        for (const auto& listener : listeners_)
            refs.push_back({listener->socket.fd.get(), listener->tag, listener->socket.bound});
    }
    spawner_->configure(settings, refs);
}

// Whether the spawner has applied the last configuration sent: after a stop's, it accepts
// nothing more, so no connection can start behind the master's back.
bool Manager::spawner_settled() const {
    return !spawner_ || !spawner_->running() ||
           spawner_->applied_generation() >= spawner_->sent_generation();
}

// The address of the listener a spawner report names; `gone` if a reload closed it since.
std::string Manager::listener_address(std::uint32_t tag, const char* gone) const {
    for (const auto& listener : listeners_)
        if (listener->tag == tag) return listener->socket.bound;
    return gone;
}

ConnectionInfo Manager::describe_spawner_peer(std::uint32_t tag, const spawner::Peer& peer) const {
    ConnectionInfo info;
    std::memcpy(&info.peer, peer.address, std::min<std::size_t>(peer.address_len, sizeof peer.address));
    info.peer_len = socklen_t(peer.address_len);
    std::optional<ucred> cred;
    if (peer.has_cred) cred = ucred{peer.cred_pid, peer.cred_uid, 0};
    // Only a UNIX peer is named after its listener.
    const std::string where = peer.address_len ? std::string() : listener_address(tag, "unix");
    describe_peer(where, reinterpret_cast<const sockaddr*>(&info.peer), info.peer_len, cred, info);
    return info;
}

// ---- the spawner: its reports ------------------------------------------------------------------

// Accepting and stopping are looked at once per datagram, not once per report.
void Manager::on_spawner_reports(std::span<const spawner::Report> reports) {
    using spawner::ReportKind;
    for (const spawner::Report& report : reports) {
        switch (report.kind) {
        case ReportKind::started: on_spawner_started(report); break;
        case ReportKind::exited:
            if (auto it = children_.find(report.id); it != children_.end()) {
                it->second.reported_traffic = {report.bytes_in, report.bytes_out, report.bytes_known != 0};
                finish_child(it->second, report.pid, report.value);
            }
            break;
        case ReportKind::refused: on_spawner_refused(report); break;
        case ReportKind::refusals_unlogged: {
            const auto count = std::uint64_t(report.value);
            totals_.refused(refusal_of(report.refusal), count);
            log::warning("refused-unlogged", {{"count", count}});
            break;
        }
        case ReportKind::accept_error: on_spawner_accept_error(report); break;
        case ReportKind::configured:
        case ReportKind::hello: break;
        }
    }
    update_master_accepting();
    maybe_finish_stop();
}

void Manager::on_spawner_started(const spawner::Report& report) {
    ConnectionInfo info = describe_spawner_peer(report.tag, report.peer);
    info.id = report.id;
    info.slot = report.slot;
    scoreboard_.set_peer(report.slot, report.id, info.peer_text);
    Child& child = add_child(info, report.start_ns);
    child.served_by = ServedBy::spawner;
    child.pid = report.pid;
}

void Manager::on_spawner_refused(const spawner::Report& report) {
    const ConnectionInfo info = describe_spawner_peer(report.tag, report.peer);
    if (report.refusal == spawner::RefusalKind::fork_failed)
        return refuse_fork(report.id, info.peer_text, std::strerror(report.value));
    refuse(report.id, info.peer_text, refusal_of(report.refusal));
}

void Manager::on_spawner_accept_error(const spawner::Report& report) {
    const std::string address = listener_address(report.tag, "");
    const int error = report.value;
    if (classify_accept_errno(error) == AcceptErrno::exhausted)
        log::warning("accept-paused", {{"address", address}, {"error", std::strerror(error)},
                                       {"resume_ms", accept_pause_usec / 1000}});
    else
        log::warning("accept-failed", {{"address", address}, {"error", std::strerror(error)}});
}

// Slots the spawner claimed for connections it had not reported yet when it died: their
// handlers died with it (PDEATHSIG), and nobody else would ever free them.
void Manager::reclaim_orphan_slots() {
    std::vector<bool> owned(scoreboard_.capacity(), false);
    for (const auto& [id, child] : children_) owned[child.slot] = true;
    for (const SlotView& slot : scoreboard_.snapshot()) {
        if (owned[slot.index]) continue;
        scoreboard_.reap(slot.index);
        totals_.start_failed();
        log::warning("connection-lost", {{"id", slot.id}, {"ended_by", ending_name(Ending::spawner_exit)}});
    }
}

// Its built-in handlers died with it (PDEATHSIG); those it had not forked yet never started.
// Both end here, counted as failed, and a new spawner takes over.
void Manager::on_spawner_exit(int wait_status) {
    const pid_t pid = spawner_->pid();
    const bool was_working = spawner_->greeted();
    spawner_->exited();  // delivers the exits it had reported but we had not read
    std::vector<std::uint64_t> lost;
    for (const auto& [id, child] : children_)
        if (child.served_by == ServedBy::spawner) lost.push_back(id);
    for (std::uint64_t id : lost) {
        Child& child = children_.at(id);
        child.ended_by = Ending::spawner_exit;
        finish_child(child, child.pid, W_EXITCODE(0, SIGKILL));
    }
    reclaim_orphan_slots();
    log::err("spawner-exited", {{"pid", long(pid)}, {"exit", describe_wait_status(wait_status)},
                                {"connections_lost", lost.size()}});
    if (state_ == State::stopping) return;
    if (was_working) restart_spawner();
    else retry_spawner_later();
}

void Manager::restart_spawner() {
    spawner_retry_.reset();
    if (auto error = spawner_->restart(); !error.empty()) {
        log::err("spawner-start-failed", {{"error", error}});
        retry_spawner_later();
        return;
    }
    log::notice("spawner-started", {{"pid", long(spawner_->pid())}});
    configure_spawner();
}

void Manager::retry_spawner_later() {
    if (auto timer = event_loop::add_timer(event_.get(), spawner_retry_usec, "spawner-retry",
                                           [this] { restart_spawner(); }))
        spawner_retry_ = std::move(*timer);
}

// ---- housekeeping: exec idle timeouts, accounting, status ------------------------------------

void Manager::on_housekeeping() {
    const unsigned idle_s = config_.limits.idle_timeout_s;
    for (auto& [id, child] : children_) {
        if (!child.tcp_view) continue;
        auto activity = read_tcp_activity(child.tcp_view.get());
        if (!activity) continue;
        scoreboard_.set_bytes(child.slot, activity->bytes_in, activity->bytes_out);
        if (idle_s && !child.term_sent && activity->idle_ms >= idle_s * 1000u)
            end_child(child, Ending::idle, SIGTERM);
    }
    std::erase_if(lingering_stderr_, [](const auto& s) { return s->finished(); });
    publish_status();
}

void Manager::publish_status() {
    std::string text = std::to_string(scoreboard_.active()) + " active";
    if (config_.limits.max_connections)
        text += " (max " + std::to_string(config_.limits.max_connections) + ")";
    text += ", " + std::to_string(totals_.accepted()) + " accepted";
    if (state_ == State::draining) text += ", draining";
    if (state_ == State::stopping) text += ", stopping";
    notifier_->status(text);
}

// ---- stopping --------------------------------------------------------------------------------

void Manager::begin_stop() {
    if (state_ == State::stopping) {
        // A second request does not wait any longer.
        log::notice("stopping-now", {{"active", scoreboard_.active()}});
        signal_all_children(SIGKILL, Ending::shutdown);
        maybe_finish_stop();
        return;
    }
    state_ = State::stopping;
    notifier_->stopping();
    log::notice("stopping", {{"active", scoreboard_.active()},
                             {"shutdown_timeout_s", config_.shutdown_timeout_s}});
    for (auto& listener : listeners_) close_listener(*listener);
    listeners_.clear();
    configure_spawner();
    publish_status();
    if (auto timer = event_loop::add_timer(event_.get(), config_.shutdown_timeout_s * usec_per_sec,
                                           "stop-deadline", [this] {
                                               stop_timer_.reset();
                                               signal_all_children(SIGTERM, Ending::shutdown);
                                           }))
        stop_timer_ = std::move(*timer);
    maybe_finish_stop();
}

void Manager::signal_all_children(int signo, Ending reason) {
    for (auto& [id, child] : children_) {
        if (signo == SIGTERM && child.term_sent) continue;
        end_child(child, reason, signo);
    }
}

void Manager::maybe_finish_stop() {
    if (state_ == State::stopping && children_.empty() && spawner_settled())
        sd_event_exit(event_.get(), 0);
}

} // namespace forkd
