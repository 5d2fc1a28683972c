// SPDX-License-Identifier: MIT
#include "daemon/master/connections.hpp"

#include "common/base/monotonic_clock.hpp"
#include "common/log.hpp"
#include "daemon/core/exit_status.hpp"
#include "daemon/proxy/proxy_exit.hpp"
#include "daemon/core/tcp_activity.hpp"
#include "daemon/event_loop/event_sources.hpp"
#include "daemon/master/handler_stderr.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/wait.h>

#include <algorithm>

namespace forkd {
namespace {

constexpr std::uint64_t usec_per_sec = 1000000;
constexpr std::uint64_t kill_grace_usec = 2 * usec_per_sec;  // SIGTERM → SIGKILL

} // namespace

Connections::Connections(sd_event* event, Scoreboard& board, ConnectionTotals& totals,
                         SpawnerSignal signal_spawner_served)
    : event_(event), board_(board), totals_(totals),
      signal_spawner_served_(std::move(signal_spawner_served)) {}

Connections::~Connections() = default;

Connection& Connections::add(const ConnectionInfo& info, std::int64_t started_ns,
                             ServedBy served_by, pid_t pid, unsigned connection_timeout_s) {
    totals_.started();
    Connection connection;
    connection.served_by = served_by;
    connection.pid = pid;
    connection.id = info.id;
    connection.slot = info.slot;
    connection.peer = info.peer_text;
    connection.source = info.source;
    connection.started_ns = started_ns;
    if (log::enabled(log::Level::debug))
        log::debug("connection-start", {{"id", connection.id}, {"peer", connection.peer}});
    auto [it, inserted] = by_id_.emplace(connection.id, std::move(connection));
    if (served_by == ServedBy::exec) exec_pids_.emplace(pid, info.id);
    if (connection_timeout_s) arm_deadline(it->second, connection_timeout_s * usec_per_sec);
    return it->second;
}

Connection* Connections::find(std::uint64_t id) {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &it->second;
}

bool Connections::exec_reaped(pid_t pid, int wait_status) {
    auto it = exec_pids_.find(pid);
    if (it == exec_pids_.end()) return false;
    const std::uint64_t id = it->second;
    exec_pids_.erase(it);
    if (Connection* connection = find(id)) finish(*connection, pid, wait_status);
    return true;
}

void Connections::finish(Connection& connection, pid_t pid, int wait_status) {
    if (connection.tcp_view) {
        if (auto activity = read_tcp_activity(connection.tcp_view.get()))
            board_.set_bytes(connection.slot, activity->bytes_in, activity->bytes_out);
    }
    // A built-in handler's slot is the spawner's to free (it may serve another connection by now).
    const auto held = board_.reap(connection.slot, connection.id);
    const auto traffic = connection.reported_traffic.value_or(held.value_or(Scoreboard::Traffic{}));
    const Ending ending = connection.ended_by.value_or(ending_of_exit(connection.served_by, wait_status));
    totals_.ended(ending);
    const auto duration_ns = monotonic_ns() - connection.started_ns;
    totals_.observe_end(duration_ns, traffic.known, traffic.in, traffic.out);
    const auto duration_ms = duration_ns / 1000000;
    if (log::enabled(log::Level::info)) {
        // Bytes nobody counted (an exec'd handler on a UNIX socket) are left out, never a false 0.
        std::vector<log::Field> fields{{"id", connection.id}, {"peer", connection.peer}, {"pid", long(pid)},
                                       {"duration_ms", long(duration_ms)},
                                       {"exit", describe_wait_status(wait_status)}};
        if (traffic.known) fields.insert(fields.end(), {{"bytes_in", traffic.in}, {"bytes_out", traffic.out}});
        fields.emplace_back("ended_by", ending_name(ending));
        if (ending == Ending::backend && WIFEXITED(wait_status))
            fields.emplace_back("reason", std::string(proxy_failure_reason(WEXITSTATUS(wait_status))));
        log::write(log::Level::info, "connection-end", fields);
    }
    if (connection.stderr_log && !connection.stderr_log->finished())
        lingering_stderr_.push_back(std::move(connection.stderr_log));
    by_id_.erase(connection.id);
}

// ---- the master ends connections ---------------------------------------------------------------

void Connections::arm_deadline(Connection& connection, std::uint64_t after_usec) {
    auto timer = event_loop::add_timer(event_, after_usec, "connection-deadline",
                                       [this, &connection] { on_deadline(connection); });
    if (!timer) {
        log::err("timer-failed", {{"id", connection.id}});
        return;
    }
    connection.deadline = std::move(*timer);
    connection.deadline_ns = monotonic_ns() + std::int64_t(after_usec) * 1000;
}

void Connections::signal(const Connection& connection, int signo) {
    if (connection.served_by != ServedBy::exec) signal_spawner_served_(connection, signo);
    else ::kill(connection.pid, signo);
}

void Connections::on_deadline(Connection& connection) {
    if (connection.term_sent) {
        signal(connection, SIGKILL);
        connection.deadline.reset();
        return;
    }
    end(connection, Ending::timeout, SIGTERM);
}

void Connections::end(Connection& connection, Ending reason, int signo) {
    if (!connection.ended_by) connection.ended_by = reason;
    // The master's dup keeps the connection open: let the client see the end even if a
    // grandchild of the handler still holds the socket.
    if (connection.tcp_view) shutdown(connection.tcp_view.get(), SHUT_RDWR);
    signal(connection, signo);
    if (signo == SIGKILL) return;
    connection.term_sent = true;
    arm_deadline(connection, kill_grace_usec);
}

void Connections::end_all(int signo, Ending reason) {
    for (auto& [id, connection] : by_id_) {
        if (signo == SIGTERM && connection.term_sent) continue;
        end(connection, reason, signo);
    }
}

void Connections::housekeeping(unsigned idle_timeout_s) {
    for (auto& [id, connection] : by_id_) {
        if (!connection.tcp_view) continue;
        auto activity = read_tcp_activity(connection.tcp_view.get());
        if (!activity) continue;
        board_.set_bytes(connection.slot, activity->bytes_in, activity->bytes_out);
        if (idle_timeout_s && !connection.term_sent && activity->idle_ms >= idle_timeout_s * 1000u)
            end(connection, Ending::idle, SIGTERM);
    }
    std::erase_if(lingering_stderr_, [](const auto& s) { return s->finished(); });
}

// ---- live upgrade --------------------------------------------------------------------------

std::vector<upgrade::ConnectionState> Connections::save() const {
    std::vector<upgrade::ConnectionState> out;
    out.reserve(by_id_.size());
    for (const auto& [id, c] : by_id_) {
        upgrade::ConnectionState s;
        s.id = c.id;
        s.slot = c.slot;
        s.pid = c.pid;
        s.served_by = std::uint8_t(c.served_by);
        s.peer = c.peer;
        s.source = c.source;
        s.started_ns = c.started_ns;
        s.deadline_ns = c.deadline ? c.deadline_ns : 0;
        s.term_sent = c.term_sent;
        s.ended_by = c.ended_by ? std::int8_t(*c.ended_by) : std::int8_t(-1);
        s.stderr_fd = c.stderr_log && !c.stderr_log->finished() ? c.stderr_log->fd() : -1;
        s.tcp_view_fd = c.tcp_view.get();
        out.push_back(std::move(s));
    }
    return out;
}

void Connections::restore(const upgrade::ConnectionState& s) {
    Connection connection;
    // A worker-served connection stays the (adopted, retiring) worker's: its end is reported by it.
    connection.served_by = s.served_by == std::uint8_t(ServedBy::spawner)  ? ServedBy::spawner
                           : s.served_by == std::uint8_t(ServedBy::worker) ? ServedBy::worker
                                                                           : ServedBy::exec;
    connection.pid = s.pid;
    connection.id = s.id;
    connection.slot = s.slot;
    connection.peer = s.peer;
    connection.source = s.source;
    connection.started_ns = s.started_ns;
    connection.term_sent = s.term_sent;
    if (s.ended_by >= 0) connection.ended_by = Ending(s.ended_by);
    if (s.tcp_view_fd >= 0) connection.tcp_view = UniqueFd(s.tcp_view_fd);
    auto [it, inserted] = by_id_.emplace(connection.id, std::move(connection));
    Connection& restored = it->second;
    if (restored.served_by == ServedBy::exec) exec_pids_.emplace(restored.pid, restored.id);
    if (s.stderr_fd >= 0) {
        try {
            restored.stderr_log = std::make_unique<HandlerStderr>(event_, UniqueFd(s.stderr_fd), restored.id);
        } catch (const std::exception& e) {
            log::warning("handler-stderr-lost", {{"id", restored.id}, {"error", e.what()}});
        }
    }
    // A deadline that passed during the exec fires at once.
    if (s.deadline_ns) {
        const std::int64_t left_ns = std::max<std::int64_t>(s.deadline_ns - monotonic_ns(), 1000);
        arm_deadline(restored, std::uint64_t(left_ns / 1000));
    }
}

// ---- forkd-spawner died ----------------------------------------------------------------------

std::size_t Connections::lose_spawner_served() {
    std::vector<std::uint64_t> lost;
    for (const auto& [id, connection] : by_id_)
        if (connection.served_by == ServedBy::spawner) lost.push_back(id);
    for (std::uint64_t id : lost) {
        Connection& connection = by_id_.at(id);
        connection.ended_by = Ending::spawner_exit;
        finish(connection, connection.pid, W_EXITCODE(0, SIGKILL));
    }
    reclaim_orphan_slots();
    return lost.size();
}

std::size_t Connections::lose_worker_served(pid_t pid) {
    std::vector<std::uint64_t> lost;
    for (const auto& [id, connection] : by_id_)
        if (connection.served_by == ServedBy::worker && connection.pid == pid) lost.push_back(id);
    for (std::uint64_t id : lost) {
        Connection& connection = by_id_.at(id);
        connection.ended_by = Ending::worker_exit;
        finish(connection, connection.pid, W_EXITCODE(0, SIGKILL));
    }
    reclaim_orphan_slots(pid);
    return lost.size();
}

std::size_t Connections::end_worker_served(pid_t pid, Ending reason) {
    std::size_t ended = 0;
    for (auto& [id, connection] : by_id_) {
        if (connection.served_by != ServedBy::worker || connection.pid != pid || connection.term_sent) continue;
        end(connection, reason, SIGTERM);
        ++ended;
    }
    return ended;
}

std::size_t Connections::served_by_worker(pid_t pid) const {
    return std::size_t(std::count_if(by_id_.begin(), by_id_.end(), [pid](const auto& entry) {
        return entry.second.served_by == ServedBy::worker && entry.second.pid == pid;
    }));
}

// Slots the spawner (or worker `pid`) claimed for connections it had not reported yet when it
// died: their handlers died with it (PDEATHSIG), and nobody else would ever free them. A worker
// writes its pid into a slot as it claims it; other workers' unreported slots are left alone.
void Connections::reclaim_orphan_slots(pid_t pid) {
    std::vector<bool> owned(board_.capacity(), false);
    for (const auto& [id, connection] : by_id_) owned[connection.slot] = true;
    for (const SlotView& slot : board_.snapshot()) {
        if (owned[slot.index] || (pid && slot.pid != pid)) continue;
        board_.reap(slot.index);
        totals_.start_failed();
        log::warning("connection-lost", {{"id", slot.id}, {"ended_by", ending_name(Ending::spawner_exit)}});
    }
}

} // namespace forkd
