// SPDX-License-Identifier: MIT
// The daemon's side of the control requests (ControlTarget) and the reload path shared by
// SIGHUP, "forkctl reload" and watch-config.
#include "common/config/config_diff.hpp"
#include "common/control/control_protocol.hpp"
#include "common/log.hpp"
#include "common/base/monotonic_clock.hpp"
#include "daemon/event_loop/event_sources.hpp"
#include "daemon/master/config_watch.hpp"
#include "daemon/master/manager.hpp"
#include "daemon/master/notify.hpp"
#include "daemon/master/spawner_link.hpp"
#include "daemon/master/metrics_render.hpp"
#include "daemon/master/metrics_server.hpp"
#include "daemon/master/status_render.hpp"

#include <grp.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

namespace forkd {
namespace {

std::string to_string_or_none(const std::optional<ListenAddress>& address) {
    return address ? to_string(*address) : std::string();
}

} // namespace

std::optional<gid_t> Manager::resolve_control_group(const std::optional<std::string>& name) {
    const std::string wanted = name.value_or("forkd");
    if (wanted.empty()) return std::nullopt;
    if (const struct group* found = getgrnam(wanted.c_str())) return found->gr_gid;
    if (name) log::warning("control-group-unknown", {{"group", wanted}});
    return std::nullopt;
}

// forkd-spawner applies a new configuration when it reads it: until it says so, a connection it
// accepts may still get the old handler or limits.
bool Manager::changes_applied() const {
    return (!spawner_ || spawner_->settled()) && (!workers_ || workers_->settled());
}

uid_t Manager::daemon_uid() const { return getuid(); }
std::optional<gid_t> Manager::control_gid() const { return control_gid_; }

StatusFacts Manager::status_facts() const {
    StatusFacts facts;
    facts.pid = master_pid_;
    facts.instance = config_.instance;
    facts.state = state_name();
    facts.agent = agent_answer();
    facts.accepting = accepting() && room_for_more() &&
                      (!spawner_accepts() || (spawner_ && spawner_->running())) &&
                      (config_.mode != ServeMode::event || (workers_ && !workers_->empty()));
    facts.mode = config_.mode;
    if (workers_) {
        for (const auto& worker : workers_->view())
            facts.workers.push_back({worker.pid, children_.served_by_worker(worker.pid), worker.accepted});
    }
    facts.active = scoreboard_.active();
    facts.uptime_s = (monotonic_ns() - started_ns_) / 1000000000;
    facts.limits = config_.limits;
    for (const auto& listener : listeners_) facts.listen.push_back(listener->socket.bound);
    facts.handler = config_.handler;
    if (config_.handler == HandlerKind::exec) facts.exec_argv = config_.exec_argv;
    facts.user = config_.user;
    facts.group = config_.group;
    facts.config_file = config_.config_file;
    facts.capacity = scoreboard_.capacity();
    if (spawner_ && spawner_->running()) facts.spawner_pid = spawner_->pid();
    facts.totals = totals_;
    facts.generation = generation_;
    facts.upgrade_error = upgrade_error_;
    const std::int64_t now = monotonic_ns();
    facts.limit_waits = {master_waits_.episodes() + spawner_waits_.episodes() + worker_waits_.episodes(),
                         master_waits_.waited_ms(now) + spawner_waits_.waited_ms(now) +
                             worker_waits_.waited_ms(now)};
    return facts;
}

nlohmann::json Manager::status() const { return render_status(status_facts()); }

// Counters are the daemon's own, never reset by a reload: they only grow until a restart.
std::string Manager::metrics() const {
    MetricsFacts facts;
    facts.status = status_facts();
    facts.reloads_ok = reloads_ok_;
    facts.reloads_failed = reloads_failed_;
    facts.start_time_s = started_unix_s_;
    return render_metrics(facts);
}

nlohmann::json Manager::list() const { return render_list(scoreboard_.snapshot(), monotonic_ns()); }

// Values are checked by the same code as the config file's (common/config.cpp).
Status Manager::set(std::string_view key, std::string_view value) {
    const auto keys = control::set_keys();
    if (std::find(keys.begin(), keys.end(), key) == keys.end())
        return failure("unknown key '" + std::string(key) + "'");
    Config next = config_;
    try {
        apply_option(next, key, std::string(value));
    } catch (const std::exception& e) {
        return failure("invalid value for " + std::string(key) + ": " + e.what());
    }
    if (auto error = capacity_error(next.limits.max_connections)) return failure(*error);
    config_.limits = next.limits;
    config_.log_level = next.log_level;
    config_.busy_message = next.busy_message;
    set_at_runtime_.insert(std::string(key));
    log::set_level(config_.log_level);
    try {
        policy_.update(config_);
    } catch (const std::exception& e) {
        return failure(std::string("set ") + std::string(key) + ": " + e.what());
    }
    update_accepting();
    publish_status();
    return Status::success();
}

// The scoreboard is sized once, at start-up.
std::optional<std::string> Manager::capacity_error(unsigned max_connections) const {
    if (max_connections <= scoreboard_.capacity()) return std::nullopt;
    return "max-connections " + std::to_string(max_connections) + " exceeds the capacity of " +
           std::to_string(scoreboard_.capacity()) + " (restart to raise it)";
}

void Manager::drain() { change_state(State::running, State::draining, "draining"); }

void Manager::resume() { change_state(State::draining, State::running, "resumed"); }

// drain and resume: only from `from` (a repeated request changes nothing and logs nothing).
// Behind a balancer (agent-listen) a drain first tells the agent and keeps accepting for
// agent-drain-delay, so that what the balancer sends before its next agent check is served.
void Manager::change_state(State from, State to, const char* event) {
    if (state_ != from) return;
    state_ = to;
    drain_grace_.reset();
    const bool grace = to == State::draining && agent_ && config_.agent_drain_delay_s;
    log::notice(event, {{"active", scoreboard_.active()},
                        {"accepting_for_s", grace ? config_.agent_drain_delay_s : 0u}});
    if (grace) {
        if (auto timer = event_loop::add_timer(event_.get(), config_.agent_drain_delay_s * 1000000ull,
                                               "agent-drain-delay", [this] {
                                                   drain_grace_.reset();
                                                   log::notice("drain-accepting-ended", {{"active", scoreboard_.active()}});
                                                   update_accepting();
                                                   publish_status();
                                               }))
            drain_grace_ = std::move(*timer);
    }
    update_accepting();
    publish_status();
}

void Manager::stop() { begin_stop(); }

Status Manager::kill(std::uint64_t id) {
    Connection* connection = children_.find(id);
    if (!connection) return failure("no active connection with id " + std::to_string(id));
    if (!connection->term_sent) children_.end(*connection, Ending::killed, SIGTERM);
    return Status::success();
}

// ---- reload ----------------------------------------------------------------------------------

Result<nlohmann::json> Manager::reload() {
    if (state_ == State::stopping) return failure("forkd is stopping");
    notifier_->reloading();
    const Config before = config_;
    Result<nlohmann::json> outcome = failure("reload");
    if (auto error = apply_reload()) {
        log::err("reload", {{"result", "failed"}, {"error", *error}});
        ++reloads_failed_;
        outcome = failure(*error);
    } else {
        ++reloads_ok_;
        outcome = report_reload(before);
    }
    announce_reload_when_applied();
    publish_status();
    return outcome;
}

// "reload result=ok" and READY=1 say the new configuration is in force: with a built-in handler
// that is once forkd-spawner has confirmed it (on_spawner_reports, housekeeping call this again).
void Manager::announce_reload_when_applied() {
    reload_pending_ = !changes_applied();
    if (reload_pending_) return;
    if (reload_summary_) log_reload_ok(*reload_summary_);
    reload_summary_.reset();
    notifier_->ready();
}

void Manager::log_reload_ok(const std::string& changed) const {
    log::notice("reload", {{"result", "ok"}, {"config", config_.config_file}, {"changed", changed}});
}

// What the reload changed, in the log and in the reply, and the values set with forkctl set that
// the file's now replace: from here on the file rules again.
nlohmann::json Manager::report_reload(const Config& before) {
    nlohmann::json changes = nlohmann::json::array(), reverted = nlohmann::json::array();
    std::string summary;
    for (const ConfigChange& change : config_changes(before, config_)) {
        changes.push_back({{"option", change.option}, {"from", change.before}, {"to", change.after}});
        summary += (summary.empty() ? "" : ", ") + describe_change(change);
        if (!set_at_runtime_.count(change.option)) continue;
        reverted.push_back(change.option);
        log::warning("reload-reverts-set", {{"option", change.option}, {"set", change.before},
                                            {"now", change.after}});
    }
    set_at_runtime_.clear();
    if (reload_summary_) log_reload_ok(*reload_summary_);  // an earlier one still unconfirmed
    reload_summary_ = summary.empty() ? "nothing" : summary;
    return {{"changes", changes}, {"reverted_set", reverted}};
}

std::optional<std::string> Manager::apply_reload() {
    Config next;
    std::optional<ExecPlan> plan;
    try {
        next = load_config(command_line_);
        plan = build_exec_plan(next);
    } catch (const std::exception& e) {
        return std::string(e.what());
    }
    if (auto error = capacity_error(next.limits.max_connections)) return error;
    if (auto error = proxy_from_error(next)) return error;
    if (auto error = rebind_listeners(next)) return error;
    if (auto error = serve_metrics(next.metrics_listen)) return error;
    if (next.pidfile != config_.pidfile || next.control_socket != config_.control_socket)
        log::warning("reload-needs-restart", {{"keys", "pidfile, control-socket"}});
    // Run-time paths stay as they are until a restart.
    next.pidfile = config_.pidfile;
    next.control_socket = config_.control_socket;
    next.foreground = config_.foreground;
    // The agent's socket is opened once, at start.
    if (to_string_or_none(next.agent_listen) != to_string_or_none(config_.agent_listen))
        log::warning("reload-needs-restart", {{"keys", "agent-listen"}});
    next.agent_listen = config_.agent_listen;
    config_ = std::move(next);
    exec_plan_ = std::move(plan);
    log_plan_warnings();
    apply_proxy_settings();
    try {
        policy_.update(config_);
    } catch (const std::exception& e) {  // the old rules stay, with the new limits
        log::err("admission-policy-failed", {{"error", e.what()}});
    }
    // Fork <-> event: the old mode's connections finish where they run; new ones go the new way.
    if (workers_) workers_->resize(worker_count(config_));
    log::set_level(config_.log_level);
    if (config_.watch_config && !config_watch_) watch_config_file();
    if (!config_.watch_config) config_watch_.reset();
    update_accepting();
    return std::nullopt;
}

std::optional<std::string> Manager::rebind_listeners(const Config& next) {
    auto error = listeners_.rebind(next.listen, next.backlog);
    if (!error) update_accepting();
    return error;
}

std::optional<std::string> Manager::serve_metrics(const std::optional<ListenAddress>& address) {
    const auto text = [](const std::optional<ListenAddress>& a) { return a ? to_string(*a) : std::string(); };
    if (metrics_server_ && text(address) == text(config_.metrics_listen)) return std::nullopt;
    if (!address) {
        metrics_server_.reset();
        return std::nullopt;
    }
    // The new endpoint is bound before the old one closes: a failed reload keeps the old.
    try {
        metrics_server_ = std::make_unique<MetricsServer>(event_.get(), *address, [this] { return metrics(); });
    } catch (const std::exception& e) {
        return "metrics-listen: " + std::string(e.what());
    }
    return std::nullopt;
}

void Manager::watch_config_file() {
    if (config_.config_file.empty()) {
        log::warning("watch-config", {{"result", "no config file to watch"}});
        return;
    }
    try {
        config_watch_ = std::make_unique<ConfigWatch>(event_.get(), config_.config_file,
                                                      [this] { (void)reload(); });
    } catch (const std::exception& e) {
        log::warning("watch-config", {{"result", "failed"}, {"error", e.what()}});
    }
}

} // namespace forkd
