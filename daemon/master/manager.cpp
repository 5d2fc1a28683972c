// SPDX-License-Identifier: MIT
// The master's event loop: accepting for exec'd handlers, the spawner's reports, reaping, and
// stopping. The connections and their timers are connections.cpp's, the spawner's supervision
// spawner_supervisor.cpp's, the listeners listeners.cpp's; control requests and reloads live in
// manager_control.cpp.
#include "daemon/master/manager.hpp"
#include "common/version.hpp"

#include "common/log.hpp"
#include "common/runtime_paths.hpp"
#include "common/config/config_values.hpp"
#include "common/base/error.hpp"
#include "common/base/monotonic_clock.hpp"
#include "common/base/peer_text.hpp"
#include "daemon/master/config_watch.hpp"
#include "daemon/control/control_server.hpp"
#include "daemon/exec/exec_launcher.hpp"
#include "daemon/core/accept.hpp"
#include "daemon/core/admitted_claim.hpp"
#include "daemon/core/child_setup.hpp"
#include "daemon/core/exit_status.hpp"
#include "daemon/event_loop/event_sources.hpp"
#include "daemon/master/agent_reply.hpp"
#include "daemon/master/agent_server.hpp"
#include "daemon/master/handler_stderr.hpp"
#include "daemon/master/listen_sockets.hpp"
#include "daemon/master/metrics_server.hpp"
#include "daemon/master/notify.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace forkd {
namespace {

constexpr std::uint64_t usec_per_sec = 1000000;
constexpr std::uint64_t accept_pause_usec = std::chrono::microseconds(accept_pause).count();
constexpr std::uint64_t housekeeping_usec = 1 * usec_per_sec;
// Without a configured limit the scoreboard still needs a size.
constexpr std::size_t minimum_capacity = 4096;
// Kept free beyond what one exec'd connection needs, so that forkctl still gets an answer and a
// reload its config file when connections take every other descriptor.
constexpr int spare_descriptors = 4;
// Connections waiting for a PROXY header at once; one more pushes the oldest out.
constexpr std::size_t proxy_waits_capacity = 4096;

void check(int rc, const char* what) {
    if (rc < 0) throw std::system_error(-rc, std::generic_category(), what);
}

double wall_clock_s() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

EventPtr new_event() {
    sd_event* raw = nullptr;
    check(sd_event_new(&raw), "sd_event_new");
    return EventPtr(raw);
}

Refusal refusal_of(spawner::RefusalKind kind) {
    switch (kind) {
    case spawner::RefusalKind::proxy: return Refusal::proxy;
    case spawner::RefusalKind::limit: return Refusal::limit;
    case spawner::RefusalKind::per_source: return Refusal::per_source;
    case spawner::RefusalKind::fork_failed: return Refusal::fork_failed;
    case spawner::RefusalKind::denied: return Refusal::denied;
    case spawner::RefusalKind::rate: return Refusal::rate;
    case spawner::RefusalKind::per_source_rate: return Refusal::per_source_rate;
    }
    return Refusal::none;
}

// Built-in handlers run as user/group too: forkd-spawner's children take this identity.
void set_identity(spawner::Request& settings, const ExecIdentity& identity) {
    settings.has_identity = 1;
    settings.set_groups = groups_need_setting(identity.gid, identity.groups.data(), identity.groups.size()) ? 1 : 0;
    settings.uid = identity.uid;
    settings.gid = identity.gid;
    // More groups are refused when the configuration loads (build_exec_plan).
    const std::size_t count = std::min(identity.groups.size(), spawner::max_groups);
    settings.group_count = static_cast<std::uint32_t>(count);
    std::copy_n(identity.groups.begin(), count, settings.groups);
}

} // namespace

std::vector<int> Manager::handled_signals() { return {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}; }

namespace {
Scoreboard make_scoreboard(UniqueFd inherited, unsigned max_connections) {
    if (inherited) return Scoreboard(std::move(inherited));
    return Scoreboard(std::max<std::size_t>(max_connections, minimum_capacity));
}
} // namespace

Manager::Manager(CommandLine command_line, Config config, UniqueFd inherited_scoreboard)
    : command_line_(std::move(command_line)),
      config_(std::move(config)),
      scoreboard_(make_scoreboard(std::move(inherited_scoreboard), config_.limits.max_connections)),
      policy_(scoreboard_),
      event_(new_event()),
      master_pid_(getpid()),
      started_ns_(monotonic_ns()),
      started_unix_s_(wall_clock_s()),
      listeners_(event_.get(), [this](Listener& ready) { accept_batch(ready); }),
      children_(event_.get(), scoreboard_, totals_,
                [this](const Connection& c, int signo) {
                    if (c.served_by == ServedBy::worker) {
                        if (workers_) workers_->signal(c.pid, c.id, c.slot, signo);
                    } else if (spawner_) {
                        spawner_->signal(c.id, c.slot, signo);
                    }
                }) {
    exec_plan_ = build_exec_plan(config_);
    policy_.update(config_);
    log_plan_warnings();
    notifier_ = Notifier::from_environment(event_.get());
}

// Sources reference the loop: the members holding them go before it (declared after it).
Manager::~Manager() {
    metrics_server_.reset();
    agent_.reset();
    proxy_waits_timer_.reset();
    proxy_waits_io_.reset();
    control_read_only_.reset();
    control_.reset();
    config_watch_.reset();
}

void Manager::add_signal_sources() {
    for (int signo : handled_signals())
        signal_sources_.push_back(event_loop::value_or_throw(event_loop::add_signal(
            event_.get(), signo, "signal",
            [this](const signalfd_siginfo& info) { on_signal(int(info.ssi_signo)); })));
}

void Manager::make_spawner() {
    spawner_ = std::make_unique<SpawnerSupervisor>(
        event_.get(), scoreboard_,
        SpawnerSupervisor::Hooks{
            [this](std::span<const spawner::Report> reports) { on_spawner_reports(reports); },
            [this] {
                spawner_waits_.update(false, monotonic_ns(), wait_context("spawner"));
                return children_.lose_spawner_served();
            },
            [this] { configure_spawner(); }});
}

void Manager::make_workers() {
    workers_ = std::make_unique<WorkerPool>(
        event_.get(), scoreboard_,
        WorkerPool::Hooks{
            [this](std::span<const spawner::Report> reports) { on_spawner_reports(reports, ServedBy::worker); },
            [this](pid_t pid) {
                worker_waits_.update(false, monotonic_ns(), wait_context("worker"));
                return children_.lose_worker_served(pid);
            },
            [this](pid_t pid) { return children_.served_by_worker(pid); },
            [this] { configure_workers(); },
            [this] { return config_.shutdown_timeout_s; },
            [this](pid_t pid) { return children_.end_worker_served(pid, Ending::shutdown); }});
}

void Manager::open() {
    add_signal_sources();
    // Always, whatever the handler: a reload may switch to a built-in one.
    make_spawner();
    spawner_->start();
    // Always too: a reload may switch to event mode.
    make_workers();
    workers_->start(worker_count(config_));
    for (const auto& address : config_.listen) {
        listeners_.open(address, config_.backlog);
        update_accepting();
    }
    if (!master_accepts() && listeners_.size() > spawner::max_listeners)
        throw ConfigError("listen: " + std::to_string(listeners_.size()) +
                          " listening sockets; a built-in handler serves at most " +
                          std::to_string(spawner::max_listeners));

    housekeeping_ = event_loop::value_or_throw(event_loop::add_periodic(
        event_.get(), housekeeping_usec, "housekeeping", [this] { on_housekeeping(); }));

    open_agent();
    if (auto error = proxy_from_error(config_)) throw ConfigError(*error);
    apply_proxy_settings();
    control_gid_ = resolve_control_group(config_.control_group);
    control_ = std::make_unique<ControlServer>(event_.get(), config_.control_socket, *this);
    // Monitoring needs no membership of the control group: status and list have a door of their own.
    control_read_only_ = std::make_unique<ControlServer>(
        event_.get(), read_only_control_socket(config_.control_socket), *this, ControlServerLimits{},
        ControlDoor::read_only);
    if (config_.watch_config) watch_config_file();
    if (auto error = serve_metrics(config_.metrics_listen)) throw BindError(*error);
}

int Manager::run() {
    publish_status();
    notifier_->ready();
    if (upgraded_from_)
        log::notice("upgraded", {{"pid", long(master_pid_)}, {"from_version", *upgraded_from_},
                                 {"to_version", forkd_version()}, {"generation", generation_},
                                 {"connections", children_.size()}});
    else
        log::notice("started", {{"pid", long(master_pid_)},
                                {"handler", std::string(handler_name(config_.handler))},
                                {"max_connections", config_.limits.max_connections}});
    const int rc = sd_event_loop(event_.get());
    listeners_.close_all();
    log::notice("stopped", {{"accepted", totals_.accepted()}, {"completed", totals_.completed()},
                            {"killed", totals_.killed()}, {"failed", totals_.failed()}});
    return rc < 0 ? 3 : 0;
}

// Accepts are paused exactly while the pause timer exists.
bool Manager::accepting() const { return state_accepts() && !accept_pause_; }

bool Manager::state_accepts() const {
    return state_ == State::running || (state_ == State::draining && drain_grace_);
}

std::string_view Manager::state_name() const {
    switch (state_) {
    case State::running: return "running";
    case State::draining: return "draining";
    case State::stopping: return "stopping";
    }
    return "running";
}

std::string Manager::agent_answer() const {
    return agent_line({state_name(), scoreboard_.active(), config_.limits.max_connections});
}

void Manager::open_agent() {
    if (!config_.agent_listen) return;
    agent_ = std::make_unique<AgentServer>(event_.get(), open_listeners(*config_.agent_listen, 64),
                                           [this] { return agent_answer(); });
    log::info("agent-listening", {{"address", agent_->bound()}});
}

// overload=wait at max-connections, and always at the scoreboard's capacity (max-connections 0).
bool Manager::room_for_more() const {
    const auto active = scoreboard_.active();
    return admits_more(config_.limits, active) && scoreboard_.has_free_slot();
}

// max-connection-rate with overload=wait: no token, no accept; a timer resumes accepting once
// one is there, and clients wait in the backlog meanwhile.
bool Manager::rate_allows() {
    const std::int64_t wait_ns = policy_.gate().rate_wait_ns(monotonic_ns());
    if (wait_ns == 0) return true;
    if (!rate_wait_) {
        const std::uint64_t usec = std::uint64_t(wait_ns + 999) / 1000;
        if (auto timer = event_loop::add_timer(event_.get(), usec, "rate-wait", [this] {
                rate_wait_.reset();
                update_master_accepting();
            }))
            rate_wait_ = std::move(*timer);
        else
            return true;  // without a timer, better to accept than to stop for good
    }
    return false;
}

LimitWaits::Context Manager::wait_context(std::string_view by) const {
    const unsigned limit = config_.limits.max_connections ? config_.limits.max_connections
                                                          : unsigned(scoreboard_.capacity());
    return {by, limit, scoreboard_.active()};
}

// After a change of state, limits, handler or listeners: both the master and the spawner.
void Manager::update_accepting() {
    update_master_accepting();
    configure_spawner();
}

// On the per-connection path (a slot freed, an accept pause): only what the master polls. With a
// built-in handler the spawner accepts, and the master's own listener sources stay off.
void Manager::update_master_accepting() {
    const bool open = master_accepts() && accepting() && rate_allows();
    const bool room = room_for_more();
    if (master_waits_.waiting() && (!open || room))
        master_waits_.update(false, monotonic_ns(), wait_context("master"));
    // At the limit the listeners stay on until a client is seen waiting (accept_batch).
    listeners_.set_polling(open && (room || !master_waits_.waiting()));
}

void Manager::pause_accepting_after(int err) {
    if (log_throttle_.allow("accept-paused", monotonic_ns()))
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
    if (!room_for_more()) {  // a client waits at the limit: a wait begins, the listeners rest
        master_waits_.update(true, monotonic_ns(), wait_context("master"));
        return update_master_accepting();
    }
    const AcceptOutcome outcome = forkd::accept_batch(
        listener.socket.fd.get(), ConnectionMode::blocking,
        [this] { return accepting() && room_for_more() && rate_allows(); },
        [&](AcceptedConnection c) {
            if (expects_proxy_header(listener)) wait_for_proxy_header(listener, std::move(c));
            else handle_connection(listener, std::move(c.fd), c.peer, c.peer_len);
            return true;
        },
        exec_descriptors_per_connection + spare_descriptors);
    if (outcome.end == AcceptEnd::exhausted) pause_accepting_after(outcome.error);
    if (outcome.end == AcceptEnd::failed && log_throttle_.allow("accept-failed", monotonic_ns()))
        log::warning("accept-failed", {{"address", listener.socket.bound},
                                       {"error", errno_text(outcome.error)}});
    update_master_accepting();
}

ConnectionInfo Manager::describe_connection(const Listener& listener, int fd,
                                            const sockaddr_storage& peer, socklen_t peer_len,
                                            const ProxyHeader* header) {
    ConnectionInfo info;
    info.id = scoreboard_.next_id();
    info.peer = peer;
    info.peer_len = peer_len;
    if (header) {  // the balancer's address moves aside; a LOCAL header keeps it as the peer
        info.proxy = peer;
        info.proxy_len = peer_len;
        if (header->command == ProxyCommand::proxy) {
            info.peer = header->source;
            info.peer_len = header->address_length;
        }
    }
    std::optional<ucred> cred;
    if (peer.ss_family == AF_UNIX) {
        ucred c{};
        socklen_t len = sizeof c;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) == 0) cred = c;
    }
    describe_peer(listener.socket.bound, reinterpret_cast<const sockaddr*>(&info.peer), info.peer_len, cred, info);
    info.local_len = sizeof info.local;
    getsockname(fd, reinterpret_cast<sockaddr*>(&info.local), &info.local_len);
    return info;
}

void Manager::describe_peer(const std::string& listener_address, const sockaddr* address,
                            socklen_t length, const std::optional<ucred>& cred, ConnectionInfo& info) const {
    info.is_unix = address->sa_family == AF_UNIX || address->sa_family == AF_UNSPEC;
    info.peer_cred = cred;
    // Named as forkd-spawner names its clients in their scoreboard slots.
    char text[peer_text_size];
    info.peer_text.assign(text, format_peer_to(text, sizeof text, address, length, listener_address,
                                               cred ? &*cred : nullptr));
    if (info.is_unix) {
        if (cred) info.source = "uid:" + std::to_string(cred->uid);
        return;
    }
    info.source = host_of(address, length);
    // source-prefix: a network counts as one source ("10.1.2.0/24").
    if (const auto ip = IpAddress::of_sockaddr(address, length)) {
        const SourcePrefix prefix = config_.limits.source_prefix;
        const unsigned bits = ip->family == IpAddress::Family::v4 ? prefix.v4 : prefix.v6;
        if (bits < ip->bits()) info.source = ip->masked(bits).to_string() + "/" + std::to_string(bits);
    }
}

void Manager::refuse(std::uint64_t id, const std::string& peer, Refusal reason, std::size_t rule) {
    totals_.refused(reason);
    const std::string why(refusal_name(reason));
    if (!log_throttle_.allow("refused", monotonic_ns(), why)) return;
    if (reason == Refusal::denied) {
        log::warning("refused", {{"id", id}, {"peer", peer}, {"reason", why},
                                 {"rule", policy_.describe_rule(rule)}});
        return;
    }
    std::string limit = "0";
    if (reason == Refusal::limit) limit = std::to_string(config_.limits.max_connections);
    if (reason == Refusal::per_source) limit = std::to_string(config_.limits.max_per_source);
    if (reason == Refusal::rate) limit = config_values::format_rate(config_.limits.max_connection_rate);
    if (reason == Refusal::per_source_rate) limit = config_values::format_rate(config_.limits.max_per_source_rate);
    log::warning("refused", {{"id", id}, {"peer", peer}, {"reason", why}, {"limit", limit},
                             {"active", scoreboard_.active()}});
}

void Manager::refuse_fork(std::uint64_t id, const std::string& peer, const char* error) {
    refuse(id, peer, Refusal::fork_failed);
    if (log_throttle_.allow("fork-failed", monotonic_ns()))
        log::err("fork-failed", {{"id", id}, {"error", error}});
}

// Every connection that passes admission and gets a slot counts as accepted, and ends as
// completed, killed or failed (a handler that could not be started is failed). The master
// accepts for exec'd handlers only; the spawner's connections arrive as reports.
void Manager::handle_connection(const Listener& listener, UniqueFd fd,
                                const sockaddr_storage& peer, socklen_t peer_len,
                                const ProxyHeader* header) {
    // The peer is the PROXY header's source when there is one: rules, limits and logs see the client.
    ConnectionInfo info = describe_connection(listener, fd.get(), peer, peer_len, header);
    const auto ip = IpAddress::of_sockaddr(reinterpret_cast<const sockaddr*>(&info.peer), info.peer_len);
    AdmissionGate& gate = policy_.gate();
    // The per-source key, as forkd-spawner and the workers count it: the scoreboard's per-source
    // count is the one every acceptor shares.
    const SourceKey key = ip ? gate.source_of(*ip)
                             : (info.peer_cred ? SourceKey::of_uid(info.peer_cred->uid) : SourceKey{});
    AdmittedClaim claim{gate.check_rules({ip ? &*ip : nullptr, key}), std::nullopt};
    if (claim.decision.admitted())
        claim = claim_admitted(scoreboard_, gate, {nullptr, key}, info.id, info.peer_text, monotonic_ns());
    if (!claim.decision.admitted()) {
        send_busy_message(fd.get(), claim.decision.refusal);
        return refuse(info.id, info.peer_text, claim.decision.refusal, claim.decision.rule);
    }
    info.slot = *claim.slot;

    if (!start_handler(info, fd)) scoreboard_.reap(info.slot);
}

// ---- proxy-protocol: the header first ----------------------------------------------------------

std::optional<std::string> Manager::proxy_from_error(const Config& config) {
    if (config.proxy_from.size() <= ProxySources::max_entries) return std::nullopt;
    return config.origin_of("proxy-from") + ": option 'proxy-from': at most " +
           std::to_string(ProxySources::max_entries) + " CIDRs";
}

// At start and on each reload: proxy-from's list, and the waiting set once proxy-protocol is on
// (connections still waiting when it goes off are closed).
void Manager::apply_proxy_settings() {
    proxy_from_ = {};
    for (const auto& text : config_.proxy_from)
        if (auto cidr = parse_cidr(text)) proxy_from_.add(*cidr);
    if (!config_.proxy_protocol) {
        if (proxy_waits_) proxy_waits_->clear();
        return;
    }
    if (proxy_waits_) return;
    proxy_waits_ = std::make_unique<ProxyHeaderWaits>(proxy_waits_capacity);
    proxy_waits_io_ = event_loop::value_or_throw(event_loop::add_io(
        event_.get(), proxy_waits_->fd(), EPOLLIN, "proxy-header", [this] { on_proxy_waits(); }));
}

bool Manager::expects_proxy_header(const Listener& listener) const {
    return config_.proxy_protocol && !listener.socket.is_unix && proxy_waits_;
}

// The peer must be one proxy-from allows; then it waits, polled by the loop, never blocking it.
void Manager::wait_for_proxy_header(const Listener& listener, AcceptedConnection c) {
    if (!proxy_from_.allows(reinterpret_cast<const sockaddr*>(&c.peer), c.peer_len))
        return refuse_proxy(c.peer, c.peer_len, "peer not allowed by proxy-from");
    const std::int64_t now_ms = monotonic_ns() / 1000000;
    proxy_waits_->add(std::move(c.fd), c.peer, c.peer_len, listener.tag, now_ms,
                      std::int64_t(config_.proxy_header_timeout_s) * 1000,
                      [this](ProxyWaitOutcome pushed) { proxy_wait_over(std::move(pushed)); });
    arm_proxy_timer();
}

void Manager::on_proxy_waits() {
    proxy_waits_->process(monotonic_ns() / 1000000,
                          [this](ProxyWaitOutcome outcome) { proxy_wait_over(std::move(outcome)); });
    arm_proxy_timer();
    update_master_accepting();
}

// One timer for every waiting connection: the oldest's deadline.
void Manager::arm_proxy_timer() {
    const int left = proxy_waits_->timeout_ms(monotonic_ns() / 1000000);
    if (left < 0) {
        if (proxy_waits_timer_) sd_event_source_set_enabled(proxy_waits_timer_.get(), SD_EVENT_OFF);
        return;
    }
    const std::uint64_t after = std::uint64_t(left) * 1000 + 1000;  // just past it, in usec
    if (proxy_waits_timer_) {
        (void)event_loop::rearm(proxy_waits_timer_.get(), after);
        return;
    }
    if (auto timer = event_loop::add_timer(event_.get(), after, "proxy-header-timeout",
                                           [this] { on_proxy_waits(); }))
        proxy_waits_timer_ = std::move(*timer);
}

void Manager::proxy_wait_over(ProxyWaitOutcome outcome) {
    if (!outcome.ok) return refuse_proxy(outcome.peer, outcome.peer_len, outcome.reason);
    const Listener* listener = nullptr;
    for (const auto& l : listeners_)
        if (l->tag == outcome.tag) listener = l.get();
    // Its listener closed by a reload, or no longer the master's to serve: the client goes.
    if (!listener || spawner_accepts() || state_ == State::stopping) return;
    handle_connection(*listener, std::move(outcome.fd), outcome.peer, outcome.peer_len, &outcome.header);
}

void Manager::refuse_proxy(const sockaddr_storage& peer, socklen_t peer_len, const char* reason) {
    totals_.refused(Refusal::proxy);
    if (!log_throttle_.allow("refused", monotonic_ns())) return;
    log::warning("refused", {{"peer", format_sockaddr(reinterpret_cast<const sockaddr*>(&peer), peer_len)},
                             {"reason", "proxy"}, {"error", std::string(reason)}});
}

// An exec'd handler, started with the master's vfork-style clone, and its connection recorded.
bool Manager::start_handler(const ConnectionInfo& info, UniqueFd& fd) {
    auto spawned = spawn_exec_handler(*exec_plan_, info, fd.get());
    if (auto* failed = std::get_if<SpawnFailure>(&spawned)) {
        if (failed->fork_failed) refuse(info.id, info.peer_text, Refusal::fork_failed);
        else totals_.start_failed();
        if (log_throttle_.allow("handler-failed", monotonic_ns()))
            log::err("handler-failed", {{"id", info.id}, {"peer", info.peer_text}, {"error", failed->error.message()}});
        return false;
    }
    auto& handler = std::get<SpawnedHandler>(spawned);
    Connection& child = children_.add(info, monotonic_ns(), ServedBy::exec, handler.pid,
                                      config_.limits.connection_timeout_s);
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

// ---- reaping ---------------------------------------------------------------------------------

void Manager::on_signal(int signo) {
    switch (signo) {
    case SIGCHLD: reap_children(); break;
    case SIGHUP: (void)reload(); break;  // a failure is logged by reload()
    case SIGUSR1:  // logrotate moved log-target's file away
        if (Status s = log::reopen_file(); !s) log::err("log-reopen-failed", {{"error", s.error().message()}});
        break;
    case SIGUSR2:  // as forkctl upgrade; the outcome is logged
        upgrade(nullptr);
        break;
    case SIGTERM:
    case SIGINT: begin_stop(); break;
    default: break;
    }
}

// SIGCHLD coalesces: one signal may stand for hundreds of exits, so reap until none is left.
// The master's children are the spawner, event-mode workers, exec'd handlers and an upgrade's
// check of the new binary; built-in handlers are the
// spawner's, which reaps them and reports each exit (on_spawner_reports).
void Manager::reap_children() {
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        if (spawner_ && spawner_->is(pid)) {
            spawner_->exited(status, state_ == State::stopping);
            continue;
        }
        if (workers_ && workers_->is(pid)) {
            workers_->exited(pid, status, state_ == State::stopping);
            continue;
        }
        if (upgrade_check_ && upgrade_check_->is(pid)) {
            upgrade_checked(status);
            continue;
        }
        children_.exec_reaped(pid, status);
    }
    update_master_accepting();
    maybe_finish_stop();
}

// ---- the spawner: what it accepts ------------------------------------------------------------

void Manager::configure_spawner() {
    if (!spawner_) return;
    auto settings = spawner_settings(config_, state_accepts());
    if (exec_plan_ && exec_plan_->identity) set_identity(settings, *exec_plan_->identity);
    settings.has_policy = 1;
    settings.policy_generation = policy_.generation();
    spawner_->configure(settings, listeners_, policy_.block_fd());
    configure_workers();
}

void Manager::configure_workers() {
    if (!workers_) return;
    auto settings = worker_settings(config_, state_ == State::running);
    settings.has_policy = 1;
    settings.policy_generation = policy_.generation();
    workers_->configure(settings, listeners_, policy_.block_fd());
}

void Manager::log_plan_warnings() const {
    for (const auto& warning : exec_plan_->warnings) log::warning("config-warning", {{"warning", warning}});
}

ConnectionInfo Manager::describe_spawner_peer(std::uint32_t tag, const spawner::Peer& peer) const {
    ConnectionInfo info;
    std::memcpy(&info.peer, peer.address, std::min<std::size_t>(peer.address_len, sizeof peer.address));
    info.peer_len = socklen_t(peer.address_len);
    std::optional<ucred> cred;
    if (peer.has_cred) cred = ucred{peer.cred_pid, peer.cred_uid, 0};
    // Only a UNIX peer is named after its listener.
    const std::string where = peer.address_len ? std::string() : listeners_.address_of(tag, "unix");
    describe_peer(where, reinterpret_cast<const sockaddr*>(&info.peer), info.peer_len, cred, info);
    return info;
}

// ---- the spawner: its reports ------------------------------------------------------------------

// Accepting and stopping are looked at once per datagram, not once per report.
void Manager::on_spawner_reports(std::span<const spawner::Report> reports, ServedBy by) {
    using spawner::ReportKind;
    for (const spawner::Report& report : reports) {
        switch (report.kind) {
        case ReportKind::started: on_spawner_started(report, by); break;
        case ReportKind::exited:
            if (Connection* child = children_.find(report.id)) {
                child->reported_traffic = {report.bytes_in, report.bytes_out, report.bytes_known != 0};
                children_.finish(*child, report.pid, report.value);
            }
            break;
        case ReportKind::refused: on_spawner_refused(report); break;
        case ReportKind::refusals_unlogged: {
            const auto count = std::uint64_t(report.value);
            const Refusal reason = refusal_of(report.refusal);
            totals_.refused(reason, count);
            // In the per-second summary of that reason, like the ones the master thinned itself.
            log_throttle_.add_suppressed("refused", monotonic_ns(), refusal_name(reason), count);
            break;
        }
        case ReportKind::accept_error: on_spawner_accept_error(report); break;
        case ReportKind::limit_wait:
            if (by == ServedBy::worker)
                worker_waits_.update(report.value != 0, report.start_ns, wait_context("worker"));
            else
                spawner_waits_.update(report.value != 0, report.start_ns, wait_context("spawner"));
            break;
        case ReportKind::configured:
            if (!changes_applied()) break;
            if (control_) control_->release_held();
            if (reload_pending_) announce_reload_when_applied();
            break;
        case ReportKind::hello: break;
        }
    }
    if (workers_) workers_->retire_idle();
    update_master_accepting();
    maybe_finish_stop();
}

void Manager::on_spawner_started(const spawner::Report& report, ServedBy by) {
    ConnectionInfo info = describe_spawner_peer(report.tag, report.peer);
    info.id = report.id;
    info.slot = report.slot;
    children_.add(info, report.start_ns, by, report.pid,
                  config_.limits.connection_timeout_s);
}

void Manager::on_spawner_refused(const spawner::Report& report) {
    const ConnectionInfo info = describe_spawner_peer(report.tag, report.peer);
    if (report.refusal == spawner::RefusalKind::proxy) {
        sockaddr_storage peer{};
        std::memcpy(&peer, report.peer.address, std::min<std::size_t>(report.peer.address_len, sizeof peer));
        return refuse_proxy(peer, socklen_t(report.peer.address_len), proxy_reason_text(std::uint32_t(report.value)));
    }
    if (report.refusal == spawner::RefusalKind::fork_failed)
        return refuse_fork(report.id, info.peer_text, std::strerror(report.value));
    const Refusal reason = refusal_of(report.refusal);
    const bool named_rule = reason == Refusal::denied && report.value >= 0;
    refuse(report.id, info.peer_text, reason, named_rule ? std::size_t(report.value) : AccessTable::no_rule);
}

// busy-message: what fits in the socket now, never waiting (the connection closes next).
void Manager::send_busy_message(int fd, Refusal reason) const {
    const std::string& text = policy_.busy_message();
    if (text.empty() || !busy_message_applies(reason)) return;
    [[maybe_unused]] const ssize_t sent = ::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void Manager::on_spawner_accept_error(const spawner::Report& report) {
    const std::string address = listeners_.address_of(report.tag, "");
    const int error = report.value;
    const bool exhausted = classify_accept_errno(error) == AcceptErrno::exhausted;
    if (!log_throttle_.allow(exhausted ? "accept-paused" : "accept-failed", monotonic_ns())) return;
    if (exhausted)
        log::warning("accept-paused", {{"address", address}, {"error", std::strerror(error)},
                                       {"resume_ms", accept_pause_usec / 1000}});
    else
        log::warning("accept-failed", {{"address", address}, {"error", std::strerror(error)}});
}

// ---- housekeeping: exec idle timeouts, accounting, status ------------------------------------

void Manager::on_housekeeping() {
    children_.housekeeping(config_.limits.idle_timeout_s);
    log_throttle_.flush(monotonic_ns());
    if (workers_) workers_->retire_idle();
    // A spawner that died before confirming a configuration will never confirm it.
    if (changes_applied()) {
        if (control_) control_->release_held();
        if (reload_pending_) announce_reload_when_applied();
    }
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
        children_.end_all(SIGKILL, Ending::shutdown);
        maybe_finish_stop();
        return;
    }
    state_ = State::stopping;
    cancel_upgrade_check();
    drain_grace_.reset();
    if (proxy_waits_) proxy_waits_->clear();  // not accepted yet: they go with the listeners
    notifier_->stopping();
    log::notice("stopping", {{"active", scoreboard_.active()},
                             {"shutdown_timeout_s", config_.shutdown_timeout_s}});
    listeners_.close_all();
    configure_spawner();
    publish_status();
    if (auto timer = event_loop::add_timer(event_.get(), config_.shutdown_timeout_s * usec_per_sec,
                                           "stop-deadline", [this] {
                                               stop_timer_.reset();
                                               children_.end_all(SIGTERM, Ending::shutdown);
                                           }))
        stop_timer_ = std::move(*timer);
    maybe_finish_stop();
}

void Manager::maybe_finish_stop() {
    if (state_ == State::stopping && children_.empty() && changes_applied() && !upgrade_check_)
        sd_event_exit(event_.get(), 0);
}

} // namespace forkd
