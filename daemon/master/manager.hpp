// SPDX-License-Identifier: MIT
#pragma once
// The master: owns the sd-event loop and composes what it drives (the listeners, the connections
// and their timers, forkd-spawner's supervision, the scoreboard, the control server); it
// accepts for exec'd handlers, turns the spawner's reports into connections, and is the daemon's
// ControlTarget.
#include "common/config/config.hpp"
#include "daemon/admission/admission.hpp"
#include "daemon/master/admission_policy.hpp"
#include "daemon/admission/proxy_header_waits.hpp"
#include "daemon/admission/proxy_sources.hpp"
#include "daemon/core/accept.hpp"
#include "daemon/core/connection_info.hpp"
#include "daemon/control/control_target.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"
#include "daemon/exec/exec_plan.hpp"
#include "daemon/master/connection_totals.hpp"
#include "daemon/master/connections.hpp"
#include "daemon/master/listeners.hpp"
#include "daemon/master/spawner_supervisor.hpp"
#include "daemon/master/worker_pool.hpp"
#include "daemon/master/limit_waits.hpp"
#include "daemon/master/log_throttle.hpp"
#include "daemon/master/status_render.hpp"
#include "daemon/master/upgrade_check_run.hpp"
#include "daemon/core/scoreboard.hpp"
#include "daemon/spawner/spawner_protocol.hpp"
#include "daemon/upgrade/upgrade_state.hpp"

#include <sys/socket.h>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace forkd {

class ControlServer;
class Notifier;
class ConfigWatch;
class MetricsServer;
class AgentServer;

class Manager final : public ControlTarget {
public:
    // Creates the loop and the scoreboard (or maps a live upgrade's inherited one); binds nothing
    // yet. The caller has blocked the signals the loop handles (see handled_signals()).
    Manager(CommandLine command_line, Config config, UniqueFd inherited_scoreboard = UniqueFd());
    ~Manager() override;
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    static std::vector<int> handled_signals();

    // Binds every listener and opens the control socket. Throws BindError (exit 3),
    // ConfigError (exit 1) or std::system_error (exit 3).
    void open();
    // Runs until the daemon stops; returns the exit code.
    int run();

    // Live upgrade (manager_upgrade.cpp). What to re-execute: the binary the daemon was started
    // from (resolved at start, so that a package update's new file is the one run) and its
    // command line; and the pidfile whose lock the new image keeps.
    struct Origin {
        std::string binary;
        std::vector<std::string> argv;
    };
    void set_origin(Origin origin) { origin_ = std::move(origin); }
    void set_pidfile(int fd, std::string path) {
        pidfile_fd_ = fd;
        pidfile_path_ = std::move(path);
    }
    // The new image, instead of open(): takes over the old image's listeners, control sockets,
    // spawner and connections from its state record. Throws like open().
    void restore(upgrade::UpgradeState state);

    // ControlTarget
    nlohmann::json status() const override;
    nlohmann::json list() const override;
    std::string metrics() const override;
    Status set(std::string_view key, std::string_view value) override;
    void drain() override;
    void resume() override;
    Result<nlohmann::json> reload() override;
    void stop() override;
    Status kill(std::uint64_t id) override;
    void upgrade(DeferredReply reply) override;
    bool changes_applied() const override;
    uid_t daemon_uid() const override;
    std::optional<gid_t> control_gid() const override;

private:
    enum class State { running, draining, stopping };
    void announce_reload_when_applied();
    void log_reload_ok(const std::string& changed) const;
    bool reload_pending_ = false;                 // its "ok" and READY=1 wait for the spawner
    std::optional<std::string> reload_summary_;   // what it changed, for that log line
    void change_state(State from, State to, const char* event);

    // What the loop's sources call (through event_loop's guard).
    void on_signal(int signo);
    void on_housekeeping();

    // Connections the master accepts (an exec'd handler).
    void accept_batch(Listener& listener);
    void handle_connection(const Listener& listener, UniqueFd fd, const sockaddr_storage& peer,
                           socklen_t peer_len, const ProxyHeader* header = nullptr);
    // proxy-protocol: a TCP connection waits for its header (proxy_header_waits.hpp) first.
    bool expects_proxy_header(const Listener& listener) const;
    static std::optional<std::string> proxy_from_error(const Config& config);
    void apply_proxy_settings();
    void wait_for_proxy_header(const Listener& listener, AcceptedConnection c);
    void on_proxy_waits();
    void arm_proxy_timer();
    void proxy_wait_over(ProxyWaitOutcome outcome);
    void refuse_proxy(const sockaddr_storage& peer, socklen_t peer_len, const char* reason);
    ConnectionInfo describe_connection(const Listener& listener, int fd,
                                       const sockaddr_storage& peer, socklen_t peer_len,
                                       const ProxyHeader* header);
    // The peer's text and per-source key: an address, or on a UNIX listener its credentials.
    void describe_peer(const std::string& listener_address, const sockaddr* address,
                       socklen_t length, const std::optional<ucred>& cred,
                       ConnectionInfo& info) const;
    // Counted, and logged with the rule or limit (`rule`: the deciding allow/deny rule of a
    // denied client); under a flood, a count per second per reason instead (log_throttle).
    void refuse(std::uint64_t id, const std::string& peer, Refusal reason,
                std::size_t rule = AccessTable::no_rule);
    // A built-in handler that could not be forked: refused (fork_failed) and logged with why.
    void refuse_fork(std::uint64_t id, const std::string& peer, const char* error);
    // Starts the handler and records its connection (in the slot info names); false if it failed.
    bool start_handler(const ConnectionInfo& info, UniqueFd& fd);

    // Reaping: the spawner and exec'd handlers.
    void reap_children();

    // The spawner (built-in handlers).
    bool spawner_accepts() const {
        return config_.mode == ServeMode::fork && config_.handler != HandlerKind::exec;
    }
    // Fork mode with an exec'd handler: the master accepts itself.
    bool master_accepts() const {
        return config_.mode == ServeMode::fork && config_.handler == HandlerKind::exec;
    }
    // Event mode: forkd-worker processes accept and serve (worker_pool.hpp).
    void configure_workers();
    void make_workers();
    // Tells the spawner what to accept on and how (SpawnerLink sends it only if it changed).
    void configure_spawner();
    // The plan's load-time warnings (settings that do nothing), at start and on each reload.
    void log_plan_warnings() const;
    ConnectionInfo describe_spawner_peer(std::uint32_t tag, const spawner::Peer& peer) const;
    // The spawner's reports, and the workers' (the same protocol; `by` says whose).
    void on_spawner_reports(std::span<const spawner::Report> reports, ServedBy by = ServedBy::spawner);
    void on_spawner_started(const spawner::Report& report, ServedBy by);
    void on_spawner_refused(const spawner::Report& report);
    void send_busy_message(int fd, Refusal reason) const;
    bool rate_allows();
    void on_spawner_accept_error(const spawner::Report& report);

    // Accepting on/off and pauses.
    void update_accepting();
    void update_master_accepting();
    void pause_accepting_after(int err);
    bool accepting() const;
    // Running, or draining within agent-drain-delay: the state in which listeners are served.
    bool state_accepts() const;
    std::string_view state_name() const;
    // The agent-check answer (agent-listen) and status' "agent", without its newline.
    std::string agent_answer() const;
    void open_agent();
    bool room_for_more() const;
    LimitWaits::Context wait_context(std::string_view by) const;

    std::optional<std::string> rebind_listeners(const Config& next);

    // Lifecycle.
    void begin_stop();
    void maybe_finish_stop();
    std::optional<std::string> apply_reload();
    nlohmann::json report_reload(const Config& before);
    std::optional<std::string> capacity_error(unsigned max_connections) const;
    void publish_status();
    StatusFacts status_facts() const;
    void watch_config_file();
    // metrics-listen: (re)binds the endpoint when the address changed; the error of a failed bind.
    std::optional<std::string> serve_metrics(const std::optional<ListenAddress>& address);
    static std::optional<gid_t> resolve_control_group(const std::optional<std::string>& name);

    void add_signal_sources();
    void make_spawner();

    // Live upgrade.
    void upgrade_checked(int wait_status);  // the check child was reaped
    void refuse_upgrade(const std::string& error, const DeferredReply& reply);
    void cancel_upgrade_check();            // a stop
    void exec_upgrade();
    upgrade::UpgradeState capture_state() const;
    std::vector<std::pair<std::string, std::string>> runtime_settings() const;
    Origin origin_;
    int pidfile_fd_ = -1;
    std::string pidfile_path_;
    std::uint32_t generation_ = 0;            // 0 at start, +1 per upgrade
    std::optional<std::string> upgrade_error_;  // why the last execve failed (status shows it)
    std::string upgrade_to_version_;          // the checked binary's version, for the log
    std::optional<std::string> upgraded_from_;  // the new image: the version it took over from
    EventSourcePtr upgrade_exec_;             // the execve, from the loop once the reply is out
    std::unique_ptr<UpgradeCheckRun> upgrade_check_;  // the new binary's check, until reaped
    DeferredReply upgrade_reply_;             // the upgrade request's, held until the check ends

    CommandLine command_line_;
    Config config_;
    std::optional<ExecPlan> exec_plan_;  // every handler's identity; argv, env and the rest for exec
    Scoreboard scoreboard_;
    AdmissionPolicy policy_;  // rules, rates and busy-message: the gate, and the spawner's block
    EventPtr event_;
    State state_ = State::running;
    pid_t master_pid_;
    std::int64_t started_ns_;
    ConnectionTotals totals_;
    std::uint64_t reloads_ok_ = 0, reloads_failed_ = 0;  // forkd_reloads_total
    double started_unix_s_;                              // forkd_start_time_seconds
    LimitWaits master_waits_, spawner_waits_, worker_waits_;  // each accepting process's waits at the limit
    LogThrottle log_throttle_;  // per-connection failures and refusals, thinned under a flood
    std::optional<gid_t> control_gid_;
    std::set<std::string> set_at_runtime_;  // options forkctl set changed since the last reload

    Listeners listeners_;
    std::unique_ptr<SpawnerSupervisor> spawner_;  // from open()
    std::unique_ptr<WorkerPool> workers_;         // from open(); empty in fork mode
    Connections children_;
    std::vector<EventSourcePtr> signal_sources_;
    EventSourcePtr housekeeping_;
    EventSourcePtr accept_pause_;
    EventSourcePtr rate_wait_;  // max-connection-rate with overload=wait: accepting resumes then
    EventSourcePtr stop_timer_;
    EventSourcePtr drain_grace_;  // drain with agent-listen: accepting until it fires
    std::unique_ptr<AgentServer> agent_;
    ProxySources proxy_from_;
    std::unique_ptr<ProxyHeaderWaits> proxy_waits_;  // from open(); exec'd handlers' connections
    EventSourcePtr proxy_waits_io_, proxy_waits_timer_;
    std::unique_ptr<ControlServer> control_;
    std::unique_ptr<ControlServer> control_read_only_;  // forkd.ro.sock: status and list for anyone
    std::unique_ptr<ConfigWatch> config_watch_;
    std::unique_ptr<MetricsServer> metrics_server_;  // metrics-listen
    std::unique_ptr<Notifier> notifier_;
};

} // namespace forkd
