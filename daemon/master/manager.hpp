// SPDX-License-Identifier: MIT
#pragma once
// The master: owns the sd-event loop and everything it drives (listeners, the child table, the
// scoreboard, timers, the control server) and is the daemon's ControlTarget.
#include "common/config/config.hpp"
#include "daemon/admission/admission.hpp"
#include "daemon/core/connection_info.hpp"
#include "daemon/control/control_target.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"
#include "daemon/exec/exec_plan.hpp"
#include "daemon/master/connection_totals.hpp"
#include "daemon/master/listen_sockets.hpp"
#include "daemon/core/scoreboard.hpp"
#include "daemon/spawner/spawner_protocol.hpp"

#include <sys/socket.h>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace forkd {

class ControlServer;
class HandlerStderr;
class Notifier;
class ConfigWatch;
class SpawnerProcess;

class Manager final : public ControlTarget {
public:
    // Creates the loop and the scoreboard; binds nothing yet. The caller has blocked the
    // signals the loop handles (see handled_signals()).
    Manager(CommandLine command_line, Config config);
    ~Manager() override;
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    static std::vector<int> handled_signals();

    // Binds every listener and opens the control socket. Throws BindError (exit 3),
    // ConfigError (exit 1) or std::system_error (exit 3).
    void open();
    // Runs until the daemon stops; returns the exit code.
    int run();

    // ControlTarget
    nlohmann::json status() const override;
    nlohmann::json list() const override;
    Status set(std::string_view key, std::string_view value) override;
    void drain() override;
    void resume() override;
    Status reload() override;
    void stop() override;
    Status kill(std::uint64_t id) override;
    uid_t daemon_uid() const override;
    std::optional<gid_t> control_gid() const override;

private:
    enum class State { running, draining, stopping };

    struct Listener {
        std::uint32_t tag = 0;  // its name in the spawner's reports
        ListenSocket socket;
        EventSourcePtr source;
    };

    // One connection being served. Built-in handlers are accepted and forked by the spawner
    // (the master learns of them from its reports); exec'd ones by the master itself.
    struct Child {
        ServedBy served_by = ServedBy::exec;
        pid_t pid = 0;
        std::uint64_t id = 0;
        std::uint32_t slot = 0;
        std::string peer;
        std::string source;
        std::int64_t started_ns = 0;
        std::optional<Ending> ended_by;   // set when the master ends it: timeout, idle, killed...
        bool term_sent = false;
        EventSourcePtr deadline;          // connection-timeout, then the SIGKILL grace
        UniqueFd tcp_view;                // exec'd handler on TCP: the master's dup for TCP_INFO
        // Built-in handler: its traffic as the spawner's exit report gives it (the spawner freed
        // the slot when it reaped the handler).
        std::optional<Scoreboard::Traffic> reported_traffic;
        std::unique_ptr<HandlerStderr> stderr_log;
    };

    // What the loop's sources call (through event_loop's guard).
    void on_signal(int signo);
    void on_child_deadline(Child& child);
    void on_housekeeping();

    // Connections.
    void accept_batch(Listener& listener);
    void handle_connection(const Listener& listener, UniqueFd fd, const sockaddr_storage& peer,
                           socklen_t peer_len);
    ConnectionInfo describe_connection(const Listener& listener, int fd,
                                       const sockaddr_storage& peer, socklen_t peer_len);
    // The peer's text and per-source key: an address, or on a UNIX listener its credentials.
    static void describe_peer(const std::string& listener_address, const sockaddr* address,
                              socklen_t length, const std::optional<ucred>& cred,
                              ConnectionInfo& info);
    Child& add_child(const ConnectionInfo& info, std::int64_t started_ns);
    void refuse(std::uint64_t id, const std::string& peer, Refusal reason);
    // A built-in handler that could not be forked: refused (fork-failed) and logged with why.
    void refuse_fork(std::uint64_t id, const std::string& peer, const char* error);
    bool start_handler(const ConnectionInfo& info, UniqueFd& fd, Child& child);
    void signal_child(const Child& child, int signo);
    void arm_deadline(Child& child, std::uint64_t after_usec);
    void end_child(Child& child, Ending reason, int signo);

    // Children.
    void reap_children();
    void finish_child(Child& child, pid_t pid, int wait_status);

    // The spawner (built-in handlers).
    bool spawner_accepts() const { return config_.handler != HandlerKind::exec; }
    // Tells the spawner what to accept on and how (SpawnerProcess sends it only if it changed).
    void configure_spawner();
    bool spawner_settled() const;
    std::string listener_address(std::uint32_t tag, const char* gone) const;
    ConnectionInfo describe_spawner_peer(std::uint32_t tag, const spawner::Peer& peer) const;
    void on_spawner_reports(std::span<const spawner::Report> reports);
    void on_spawner_started(const spawner::Report& report);
    void on_spawner_refused(const spawner::Report& report);
    void on_spawner_accept_error(const spawner::Report& report);
    void reclaim_orphan_slots();
    void on_spawner_exit(int wait_status);
    void restart_spawner();
    void retry_spawner_later();

    // Accepting on/off and pauses.
    void update_accepting();
    void update_master_accepting();
    void pause_accepting_after(int err);
    bool accepting() const;
    bool room_for_more() const;

    // Listeners.
    void add_listeners(std::vector<ListenSocket> sockets);
    void close_listener(Listener& listener);
    std::optional<std::string> rebind_listeners(const Config& next);

    // Lifecycle.
    void begin_stop();
    void signal_all_children(int signo, Ending reason);
    void maybe_finish_stop();
    std::optional<std::string> apply_reload();
    std::optional<std::string> capacity_error(unsigned max_connections) const;
    void publish_status();
    void watch_config_file();
    static std::optional<gid_t> resolve_control_group(const std::optional<std::string>& name);

    CommandLine command_line_;
    Config config_;
    std::optional<ExecPlan> exec_plan_;
    Admission admission_;
    Scoreboard scoreboard_;
    EventPtr event_;
    State state_ = State::running;
    pid_t master_pid_;
    std::int64_t started_ns_;
    ConnectionTotals totals_;
    std::uint32_t next_listener_tag_ = 1;
    std::optional<gid_t> control_gid_;

    std::vector<std::unique_ptr<Listener>> listeners_;
    std::unordered_map<std::uint64_t, Child> children_;  // by connection id
    std::unordered_map<pid_t, std::uint64_t> exec_pids_; // the master's own children: pid → id
    std::unique_ptr<SpawnerProcess> spawner_;
    EventSourcePtr spawner_retry_;
    std::vector<std::unique_ptr<HandlerStderr>> lingering_stderr_;
    std::vector<EventSourcePtr> signal_sources_;
    EventSourcePtr housekeeping_;
    EventSourcePtr accept_pause_;
    EventSourcePtr stop_timer_;
    std::unique_ptr<ControlServer> control_;
    std::unique_ptr<ConfigWatch> config_watch_;
    std::unique_ptr<Notifier> notifier_;
};

} // namespace forkd
