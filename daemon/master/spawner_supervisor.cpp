// SPDX-License-Identifier: MIT
#include "daemon/master/spawner_supervisor.hpp"

#include "common/log.hpp"
#include "daemon/core/exit_status.hpp"
#include "daemon/event_loop/event_sources.hpp"

#include <vector>

namespace forkd {
namespace {

// A spawner that died before it said hello is broken (a missing or mismatched binary): retry
// at this pace rather than in a tight loop.
constexpr std::uint64_t spawner_retry_usec = 1000000;

} // namespace

// Its per-source counts cover its own connections: after a reload from exec to a built-in
// handler, the exec'd ones still running are not counted against their sources.
spawner::Request spawner_settings(const Config& config, bool accepting) {
    const bool built_in = config.handler != HandlerKind::exec && config.mode == ServeMode::fork;
    return serving_settings(config, built_in, accepting);
}

spawner::Request serving_settings(const Config& config, bool serves, bool accepting) {
    const bool built_in = serves;
    spawner::Request settings;
    settings.kind = spawner::RequestKind::configure;
    settings.accepting = built_in && accepting;
    settings.handler = built_in ? config.handler : HandlerKind::echo;
    settings.idle_timeout_s = config.limits.idle_timeout_s;
    settings.max_connections = config.limits.max_connections;
    settings.max_per_source = config.limits.max_per_source;
    settings.reject_at_limit = config.limits.overload == OverloadPolicy::reject;
    settings.rate_count = config.limits.max_connection_rate.count;
    settings.rate_seconds = config.limits.max_connection_rate.seconds;
    settings.source_rate_count = config.limits.max_per_source_rate.count;
    settings.source_rate_seconds = config.limits.max_per_source_rate.seconds;
    settings.source_prefix_v4 = config.limits.source_prefix.v4;
    settings.source_prefix_v6 = config.limits.source_prefix.v6;
    if (settings.handler == HandlerKind::proxy && config.proxy_to) {
        const std::string target = proxy_target_text(*config.proxy_to);
        target.copy(settings.proxy_to, sizeof settings.proxy_to - 1);  // the config bounds it
        settings.proxy_connect_timeout_s = config.proxy_connect_timeout_s;
    }
    settings.buffer_size = config.buffer_size;
    settings.proxy_protocol = config.proxy_protocol ? 1 : 0;
    settings.proxy_header_timeout_s = config.proxy_header_timeout_s;
    for (const auto& text : config.proxy_from) {
        const auto cidr = parse_cidr(text);  // checked when the configuration loaded
        if (!cidr || settings.proxy_from_count == ProxySources::max_entries) continue;
        settings.proxy_from[settings.proxy_from_count++] = *cidr;
    }
    return settings;
}

SpawnerSupervisor::SpawnerSupervisor(sd_event* event, const Scoreboard& board, Hooks hooks)
    : event_(event), hooks_(std::move(hooks)),
      process_(std::make_unique<SpawnerLink>(event, board, hooks_.on_reports)) {}

SpawnerSupervisor::~SpawnerSupervisor() {
    retry_.reset();
    process_.reset();
}

void SpawnerSupervisor::start() {
    process_->start_and_wait();
    log::info("spawner-started", {{"pid", long(process_->pid())}});
}

void SpawnerSupervisor::adopt(pid_t pid, UniqueFd socket, std::uint64_t generation) {
    process_->adopt(pid, std::move(socket), generation);
    log::info("spawner-adopted", {{"pid", long(pid)}});
}

bool SpawnerSupervisor::settled() const {
    return !running() || process_->applied_generation() >= process_->sent_generation();
}

void SpawnerSupervisor::configure(const spawner::Request& settings, const Listeners& listeners, int policy_fd) {
    if (!running()) return;
    std::vector<SpawnerLink::ListenerRef> refs;
    if (settings.accepting) {
        for (const auto& listener : listeners.all())
            refs.push_back({listener->socket.fd.get(), listener->tag, listener->socket.bound});
    }
    process_->configure(settings, refs, policy_fd);
}

void SpawnerSupervisor::signal(std::uint64_t id, std::uint32_t slot, int signo) {
    process_->signal(id, slot, signo);
}

// Its built-in handlers died with it (PDEATHSIG); those it had not forked yet never started.
// Both end here, counted as failed, and a new spawner takes over.
void SpawnerSupervisor::exited(int wait_status, bool stopping) {
    const pid_t pid = process_->pid();
    const bool was_working = process_->greeted();
    process_->exited();  // delivers the exits it had reported but we had not read
    const std::size_t lost = hooks_.lose_connections();
    log::err("spawner-exited", {{"pid", long(pid)}, {"exit", describe_wait_status(wait_status)},
                                {"connections_lost", lost}});
    if (stopping) return;
    if (was_working) restart();
    else retry_later();
}

void SpawnerSupervisor::restart() {
    retry_.reset();
    if (auto error = process_->restart(); !error.empty()) {
        log::err("spawner-start-failed", {{"error", error}});
        retry_later();
        return;
    }
    log::notice("spawner-started", {{"pid", long(process_->pid())}});
    hooks_.configure();
}

void SpawnerSupervisor::retry_later() {
    if (auto timer = event_loop::add_timer(event_, spawner_retry_usec, "spawner-retry",
                                           [this] { restart(); }))
        retry_ = std::move(*timer);
}

} // namespace forkd
