// SPDX-License-Identifier: MIT
#pragma once
// Event mode's workers (forkd-worker, daemon/worker/): the master starts `workers` of them, tells
// each what to accept on and how (the spawner's protocol), and supervises them as it does
// forkd-spawner: a dead worker is logged, its connections end as failed, and a new one starts
// (at once if it had worked, else after a pause). A worker no longer wanted (a reload to fork
// mode or to fewer workers) is told to accept nothing and retired once its connections are over,
// at the latest at shutdown-timeout (its connections then ended as at a stop).
#include "common/config/config.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"
#include "daemon/master/listeners.hpp"
#include "daemon/master/spawner_link.hpp"
#include "daemon/spawner/spawner_protocol.hpp"
#include "daemon/upgrade/upgrade_state.hpp"

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace forkd {

class Scoreboard;

// What the workers are told for `config`: they accept only in event mode and while `accepting`.
spawner::Request worker_settings(const Config& config, bool accepting);
// `workers`, with 0 resolved to the online CPUs.
std::size_t worker_count(const Config& config);
// max-connection-rate's count for worker `index` of `workers`, so that together they keep the
// configured global rate: count/workers each, the remainder to the first ones (exact when
// count >= workers), and at least 1 (a share of 0 would mean no limit).
std::uint32_t rate_share(std::uint32_t count, std::size_t workers, std::size_t index);

class WorkerPool {
public:
    struct Hooks {
        SpawnerLink::ReportHandler on_reports;
        // Worker `pid` died: end the connections it served; returns how many were lost.
        std::function<std::size_t(pid_t)> lose_connections;
        // Connections worker `pid` serves now (a retiring one goes when this is 0).
        std::function<std::size_t(pid_t)> active_of;
        // A new worker runs: tell the workers what to accept.
        std::function<void()> configure;
        // How long a retiring worker may finish its connections (shutdown-timeout, in force
        // when it begins to retire), and ending those of worker `pid` once that is over (as a
        // stop past shutdown-timeout does); returns how many.
        std::function<unsigned()> retire_timeout_s;
        std::function<std::size_t(pid_t)> end_connections;
    };

    WorkerPool(sd_event* event, const Scoreboard& board, Hooks hooks);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Start-up, before the loop runs: starts `count` workers and waits for each one's hello.
    // Throws std::runtime_error as SpawnerLink::start_and_wait.
    void start(std::size_t count);
    // In the loop (a reload): `count` workers wanted from now on; more are started, the surplus
    // retires. Then configure() tells them what to do.
    void resize(std::size_t count);

    // Live upgrade: the running workers as the state record carries them (the old image), and
    // those workers taken over by the new image, each retiring: the next configure() tells it to
    // accept nothing, and it goes once its connections are over, as after a reload to fewer
    // workers. Call resize() afterwards for the new image's own workers.
    std::vector<upgrade::WorkerState> save() const;
    void adopt(const std::vector<upgrade::WorkerState>& workers);

    bool is(pid_t pid) const;
    // The master reaped worker `pid`; `stopping`: the daemon stops, no new one is started.
    void exited(pid_t pid, int wait_status, bool stopping);

    // Working workers get `settings` (each its share of max-connection-rate), the listeners and
    // the admission policy block `policy_fd` (with settings.has_policy); retiring ones accept
    // nothing.
    void configure(const spawner::Request& settings, const Listeners& listeners, int policy_fd = -1);
    // Ends connection `id` in worker `pid` (the worker closes it whatever the signal).
    void signal(pid_t pid, std::uint64_t id, std::uint32_t slot, int signo);
    // Retires workers no longer wanted whose connections are over (housekeeping, reports).
    // One still serving at shutdown-timeout after it began to retire has its connections ended
    // then; one still running a kill grace after that is killed.
    void retire_idle();
    // Every running worker applied the last configuration sent.
    bool settled() const;
    bool empty() const { return workers_.empty(); }

    struct WorkerView {
        pid_t pid = 0;
        std::uint64_t accepted = 0;
        bool retiring = false;
    };
    std::vector<WorkerView> view() const;

private:
    struct Worker {
        std::unique_ptr<SpawnerLink> link;
        std::uint64_t accepted = 0;
        bool retiring = false;
        std::int64_t retiring_since_ns = 0;  // monotonic
        bool ended_at_deadline = false;
        EventSourcePtr retry, retire_deadline;
    };
    Worker& add();
    void retire(Worker& worker, std::int64_t since_ns);
    void retire_deadline_passed(Worker& worker);
    void launch(Worker& worker);
    void retry_later(Worker& worker);
    void forward_reports(Worker& worker, std::span<const spawner::Report> reports);
    Worker* find(pid_t pid);

    sd_event* event_;
    const Scoreboard& board_;
    Hooks hooks_;
    std::string path_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::size_t wanted_ = 0;
};

} // namespace forkd
