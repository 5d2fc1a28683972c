// SPDX-License-Identifier: MIT
#pragma once
// The connections being served, whoever forked their handler, and their timers: the
// connection-timeout deadline, the idle check and the SIGTERM → SIGKILL escalation. Each one
// holds a scoreboard slot (which counts it for its source too); ending it frees the slot, moves
// the totals and logs its connection-end line.
#include "common/base/unique_fd.hpp"
#include "daemon/core/connection_info.hpp"
#include "daemon/core/scoreboard.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"
#include "daemon/master/connection_totals.hpp"
#include "daemon/upgrade/upgrade_state.hpp"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace forkd {

class HandlerStderr;

// One connection being served. Built-in handlers are accepted and forked by the spawner (the
// master learns of them from its reports); exec'd ones by the master itself.
struct Connection {
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
    std::int64_t deadline_ns = 0;     // when it fires (monotonic), for a live upgrade
    UniqueFd tcp_view;                // exec'd handler on TCP: the master's dup for TCP_INFO
    // Built-in handler: its traffic as the spawner's exit report gives it (the spawner freed the
    // slot when it reaped the handler).
    std::optional<Scoreboard::Traffic> reported_traffic;
    std::unique_ptr<HandlerStderr> stderr_log;
};

class Connections {
public:
    // Signals the handler of a connection the spawner serves, or ends one a worker serves (the master may not: the pid is
    // the spawner's child, and may be reused once the spawner reaped it).
    using SpawnerSignal = std::function<void(const Connection&, int signo)>;

    Connections(sd_event* event, Scoreboard& board, ConnectionTotals& totals, SpawnerSignal signal_spawner_served);
    ~Connections();
    Connections(const Connections&) = delete;
    Connections& operator=(const Connections&) = delete;

    // A started connection (its slot claimed, which counts it against its source): counted
    // accepted, and, with connection_timeout_s, ended when that passes.
    Connection& add(const ConnectionInfo& info, std::int64_t started_ns, ServedBy served_by,
                    pid_t pid, unsigned connection_timeout_s);
    Connection* find(std::uint64_t id);
    bool empty() const { return by_id_.empty(); }

    // The master reaped `pid`: finishes its connection if it is an exec'd handler's. False if it
    // is no handler of the master's.
    bool exec_reaped(pid_t pid, int wait_status);
    // Frees its slot (and so its source's count), counts and logs how it ended, and forgets it.
    void finish(Connection& connection, pid_t pid, int wait_status);
    // The master ends it (`reason`): SIGTERM, then SIGKILL after a grace; or SIGKILL at once.
    void end(Connection& connection, Ending reason, int signo);
    // Every connection; a SIGTERM spares those already sent one.
    void end_all(int signo, Ending reason);
    // Once a second: exec'd handlers' traffic into the scoreboard, idle ones ended.
    void housekeeping(unsigned idle_timeout_s);

    // A live upgrade: every connection as the state record holds it (descriptors stay open and
    // owned here until the execve), and, in the new image, each one back with its remaining
    // deadline and its stderr pipe (its slot and per-source count live on in the scoreboard),
    // without counting it accepted again.
    std::vector<upgrade::ConnectionState> save() const;
    void restore(const upgrade::ConnectionState& state);
    std::size_t size() const { return by_id_.size(); }

    // forkd-spawner died: its handlers died with it (PDEATHSIG). Ends each one (failed) and
    // frees the slots it had claimed but not reported; returns how many connections it lost.
    std::size_t lose_spawner_served();
    // forkd-worker `pid` died: its connections closed with it. Ends each one (failed) and frees
    // the slots it had claimed but not reported; returns how many connections it lost.
    std::size_t lose_worker_served(pid_t pid);
    // Connections forkd-worker `pid` serves.
    std::size_t served_by_worker(pid_t pid) const;
    // Ends (SIGTERM, then SIGKILL after the grace) the connections worker `pid` serves that
    // were not ended yet; returns how many it ended.
    std::size_t end_worker_served(pid_t pid, Ending reason);

private:
    void arm_deadline(Connection& connection, std::uint64_t after_usec);
    void on_deadline(Connection& connection);
    void signal(const Connection& connection, int signo);
    // Slots no connection owns; with `pid`, only those whose pid is that worker's.
    void reclaim_orphan_slots(pid_t pid = 0);

    sd_event* event_;
    Scoreboard& board_;
    ConnectionTotals& totals_;
    SpawnerSignal signal_spawner_served_;
    std::unordered_map<std::uint64_t, Connection> by_id_;
    std::unordered_map<pid_t, std::uint64_t> exec_pids_;  // the master's own children: pid → id
    // Stderr pipes of finished handlers that a grandchild still writes to.
    std::vector<std::unique_ptr<HandlerStderr>> lingering_stderr_;
};

} // namespace forkd
