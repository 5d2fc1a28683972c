// SPDX-License-Identifier: MIT
#pragma once
// Keeps one forkd-spawner running for the master: starts it, tells it what to accept, and when
// it dies has its connections counted lost and starts a new one (at once if the last one had
// worked, else after a pause: a missing or mismatched binary must not restart in a tight loop).
#include "common/config/config.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"
#include "daemon/master/listeners.hpp"
#include "daemon/master/spawner_link.hpp"
#include "daemon/spawner/spawner_protocol.hpp"

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <span>

namespace forkd {

class Scoreboard;

// What the spawner is told for `config`: it accepts only with a built-in handler and while
// `accepting` (the daemon runs); otherwise it accepts nothing and so drops its copies of the
// listening sockets (a stop must close them for good).
spawner::Request spawner_settings(const Config& config, bool accepting);
// The same for whichever process serves (`serves`: forkd-spawner in fork mode, the workers in
// event mode); one that does not serve accepts nothing.
spawner::Request serving_settings(const Config& config, bool serves, bool accepting);

class SpawnerSupervisor {
public:
    struct Hooks {
        SpawnerLink::ReportHandler on_reports;
        // It died: end the connections it served; returns how many were lost.
        std::function<std::size_t()> lose_connections;
        // A new one runs: tell it what to accept.
        std::function<void()> configure;
    };

    SpawnerSupervisor(sd_event* event, const Scoreboard& board, Hooks hooks);
    ~SpawnerSupervisor();
    SpawnerSupervisor(const SpawnerSupervisor&) = delete;
    SpawnerSupervisor& operator=(const SpawnerSupervisor&) = delete;

    // Start-up, before the loop runs (throws as SpawnerLink::start_and_wait).
    void start();
    // A live upgrade's new image: the running spawner (SpawnerLink::adopt).
    void adopt(pid_t pid, UniqueFd socket, std::uint64_t generation);
    // For the state record: its socket and the last generation sent.
    int socket_fd() const { return process_->socket_fd(); }
    std::uint64_t generation() const { return process_->sent_generation(); }
    // The master reaped pid(); `stopping`: the daemon stops, no new one is started.
    void exited(int wait_status, bool stopping);

    bool running() const { return process_ && process_->running(); }
    pid_t pid() const { return process_->pid(); }
    bool is(pid_t pid) const { return process_ && pid == process_->pid(); }
    // Whether it has applied the last configuration sent: after a stop's, it accepts nothing
    // more, so no connection can start behind the master's back.
    bool settled() const;

    // Sends `settings` (spawner_settings) and, if it accepts, these listeners, and the admission
    // policy block (settings.has_policy, its generation in settings); only changes go out.
    void configure(const spawner::Request& settings, const Listeners& listeners, int policy_fd = -1);
    void signal(std::uint64_t id, std::uint32_t slot, int signo);

private:
    void restart();
    void retry_later();

    sd_event* event_;
    Hooks hooks_;
    std::unique_ptr<SpawnerLink> process_;
    EventSourcePtr retry_;
};

} // namespace forkd
