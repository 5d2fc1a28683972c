// SPDX-License-Identifier: MIT
#include "daemon/master/worker_pool.hpp"

#include "common/log.hpp"
#include "common/base/monotonic_clock.hpp"
#include "daemon/core/exit_status.hpp"
#include "daemon/event_loop/event_sources.hpp"
#include "daemon/master/spawner_supervisor.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>

namespace forkd {
namespace {

// A worker that died before it said hello is broken (a missing or mismatched binary).
constexpr std::uint64_t worker_retry_usec = 1000000;
// After a retiring worker's connections were ended at its deadline: the time they have to close
// (the connections' own SIGTERM -> SIGKILL grace, and a little) before the worker is killed.
constexpr std::int64_t retire_kill_grace_ns = 3 * 1000000000LL;

} // namespace

spawner::Request worker_settings(const Config& config, bool accepting) {
    const bool event = config.mode == ServeMode::event && config.handler != HandlerKind::exec;
    return serving_settings(config, event, accepting);
}

std::size_t worker_count(const Config& config) {
    if (config.mode != ServeMode::event) return 0;
    if (config.workers) return config.workers;
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? std::size_t(cpus) : 1;
}

std::uint32_t rate_share(std::uint32_t count, std::size_t workers, std::size_t index) {
    if (count == 0 || workers <= 1) return count;
    const std::uint32_t share = std::uint32_t(count / workers + (index < count % workers ? 1 : 0));
    return std::max<std::uint32_t>(share, 1);
}

WorkerPool::WorkerPool(sd_event* event, const Scoreboard& board, Hooks hooks)
    : event_(event), board_(board), hooks_(std::move(hooks)), path_(SpawnerLink::worker_binary_path()) {}

WorkerPool::~WorkerPool() { workers_.clear(); }  // each link SIGKILLs and reaps its process

WorkerPool::Worker& WorkerPool::add() {
    auto worker = std::make_unique<Worker>();
    Worker* raw = worker.get();
    worker->link = std::make_unique<SpawnerLink>(
        event_, board_, [this, raw](std::span<const spawner::Report> reports) { forward_reports(*raw, reports); },
        path_);
    workers_.push_back(std::move(worker));
    return *raw;
}

void WorkerPool::forward_reports(Worker& worker, std::span<const spawner::Report> reports) {
    for (const auto& report : reports)
        if (report.kind == spawner::ReportKind::started) ++worker.accepted;
    hooks_.on_reports(reports);
}

void WorkerPool::start(std::size_t count) {
    wanted_ = count;
    for (std::size_t i = 0; i < count; ++i) {
        Worker& worker = add();
        worker.link->start_and_wait();
        log::info("worker-started", {{"pid", long(worker.link->pid())}});
    }
}

void WorkerPool::resize(std::size_t count) {
    wanted_ = count;
    std::size_t working = 0;
    for (auto& worker : workers_) {
        if (worker->retiring) continue;
        if (working < count) ++working;
        else retire(*worker, monotonic_ns());
    }
    while (working++ < count) launch(add());
}

std::vector<upgrade::WorkerState> WorkerPool::save() const {
    std::vector<upgrade::WorkerState> out;
    std::uint32_t index = 0;
    for (const auto& worker : workers_) {
        const SpawnerLink& link = *worker->link;
        if (!link.running() || link.socket_fd() < 0) continue;
        out.push_back({std::int32_t(link.pid()), link.socket_fd(), index++, worker->accepted,
                       link.sent_generation(), worker->retiring ? worker->retiring_since_ns : 0});
    }
    return out;
}

// The fds become the links'; a pid not above 1 or a bad fd is skipped.
void WorkerPool::adopt(const std::vector<upgrade::WorkerState>& workers) {
    for (const auto& state : workers) {
        if (state.pid <= 1 || state.fd < 0) continue;
        Worker& worker = add();
        worker.link->adopt(pid_t(state.pid), UniqueFd(state.fd), state.generation);
        worker.accepted = state.accepted;
        // One that retired in the old image keeps its deadline; the others retire from now.
        retire(worker, state.retiring_since_ns > 0 ? state.retiring_since_ns : monotonic_ns());
        log::info("worker-adopted", {{"pid", long(state.pid)}, {"accepted", state.accepted}});
    }
}

// Its deadline is a timer of its own: it may serve held connections for hours otherwise.
void WorkerPool::retire(Worker& worker, std::int64_t since_ns) {
    worker.retiring = true;
    worker.retiring_since_ns = since_ns;
    const std::int64_t deadline = since_ns + std::int64_t(hooks_.retire_timeout_s()) * 1000000000LL;
    const std::int64_t left_ns = std::max<std::int64_t>(deadline - monotonic_ns(), 0);
    if (auto timer = event_loop::add_timer(event_, std::uint64_t(left_ns / 1000), "worker-retire-deadline",
                                           [this, &worker] { retire_deadline_passed(worker); }))
        worker.retire_deadline = std::move(*timer);
}

void WorkerPool::retire_deadline_passed(Worker& worker) {
    worker.retire_deadline.reset();
    if (!worker.link->running()) return;
    const pid_t pid = worker.link->pid();
    if (worker.ended_at_deadline) {
        log::warning("worker-killed", {{"pid", long(pid)}, {"reason", "retire-deadline"}});
        ::kill(pid, SIGKILL);  // its connections are lost with it (exited())
        return;
    }
    worker.ended_at_deadline = true;
    const std::size_t ended = hooks_.end_connections(pid);
    log::notice("worker-retire-timeout", {{"pid", long(pid)}, {"connections", ended},
                                          {"shutdown_timeout_s", hooks_.retire_timeout_s()}});
    if (auto timer = event_loop::add_timer(event_, std::uint64_t(retire_kill_grace_ns / 1000),
                                           "worker-retire-kill", [this, &worker] { retire_deadline_passed(worker); }))
        worker.retire_deadline = std::move(*timer);
}

void WorkerPool::launch(Worker& worker) {
    worker.retry.reset();
    if (auto error = worker.link->restart(); !error.empty()) {
        log::err("worker-start-failed", {{"error", error}});
        return retry_later(worker);
    }
    log::notice("worker-started", {{"pid", long(worker.link->pid())}});
    hooks_.configure();
}

void WorkerPool::retry_later(Worker& worker) {
    if (auto timer = event_loop::add_timer(event_, worker_retry_usec, "worker-retry",
                                           [this, &worker] { launch(worker); }))
        worker.retry = std::move(*timer);
}

WorkerPool::Worker* WorkerPool::find(pid_t pid) {
    for (auto& worker : workers_)
        if (worker->link->running() && worker->link->pid() == pid) return worker.get();
    return nullptr;
}

bool WorkerPool::is(pid_t pid) const {
    return std::any_of(workers_.begin(), workers_.end(),
                       [pid](const auto& w) { return w->link->running() && w->link->pid() == pid; });
}

// Its connections ended with it (their sockets closed with the process): counted failed, and a
// new worker takes its place unless it was retiring or the daemon stops.
void WorkerPool::exited(pid_t pid, int wait_status, bool stopping) {
    Worker* worker = find(pid);
    if (!worker) return;
    const bool was_working = worker->link->greeted();
    worker->link->exited();
    const std::size_t lost = hooks_.lose_connections(pid);
    if (worker->retiring) {
        log::info("worker-retired", {{"pid", long(pid)}});
        std::erase_if(workers_, [worker](const auto& w) { return w.get() == worker; });
        return;
    }
    log::err("worker-exited", {{"pid", long(pid)}, {"exit", describe_wait_status(wait_status)},
                               {"connections_lost", lost}});
    if (stopping) return;
    if (was_working) launch(*worker);
    else retry_later(*worker);
}

void WorkerPool::configure(const spawner::Request& settings, const Listeners& listeners, int policy_fd) {
    std::vector<SpawnerLink::ListenerRef> refs;
    for (const auto& listener : listeners.all())
        refs.push_back({listener->socket.fd.get(), listener->tag, listener->socket.bound});
    const auto working = std::size_t(std::count_if(workers_.begin(), workers_.end(), [](const auto& w) {
        return w->link->running() && !w->retiring;
    }));
    std::size_t index = 0;
    for (auto& worker : workers_) {
        if (!worker->link->running()) continue;
        spawner::Request mine = settings;
        if (worker->retiring) mine.accepting = 0;
        else mine.rate_count = rate_share(settings.rate_count, working, index++);
        worker->link->configure(mine,
                                mine.accepting ? std::span<const SpawnerLink::ListenerRef>(refs)
                                               : std::span<const SpawnerLink::ListenerRef>(),
                                policy_fd);
    }
}

void WorkerPool::signal(pid_t pid, std::uint64_t id, std::uint32_t slot, int signo) {
    if (Worker* worker = find(pid)) worker->link->signal(id, slot, signo);
}

// A retiring worker that accepts nothing any more (it applied that) and serves nobody: its
// socket closes and it exits; its SIGCHLD removes it (exited()).
void WorkerPool::retire_idle() {
    for (auto& worker : workers_) {
        SpawnerLink& link = *worker->link;
        if (!worker->retiring || !link.running()) continue;
        if (link.applied_generation() < link.sent_generation()) continue;
        if (hooks_.active_of(link.pid()) == 0) ::kill(link.pid(), SIGKILL);
    }
    // Retiring workers that are not running (a failed start) have nothing to wait for.
    std::erase_if(workers_, [](const auto& w) { return w->retiring && !w->link->running(); });
}

bool WorkerPool::settled() const {
    return std::all_of(workers_.begin(), workers_.end(), [](const auto& w) {
        return !w->link->running() || w->link->applied_generation() >= w->link->sent_generation();
    });
}

std::vector<WorkerPool::WorkerView> WorkerPool::view() const {
    std::vector<WorkerView> out;
    for (const auto& worker : workers_)
        if (worker->link->running()) out.push_back({worker->link->pid(), worker->accepted, worker->retiring});
    return out;
}

} // namespace forkd
