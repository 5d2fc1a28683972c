// SPDX-License-Identifier: MIT
// Live upgrade: the master re-executes the binary it was started from, same pid. The old image
// checks the new binary first (daemon/upgrade/upgrade_check.hpp), then writes its state record,
// clears FD_CLOEXEC on exactly the descriptors the record names and execs; the new image's
// restore() takes everything over. A check that fails refuses the upgrade and changes nothing;
// an execve that fails leaves the old image running as it was.
#include "common/config/config_options.hpp"
#include "common/version.hpp"
#include "common/log.hpp"
#include "common/base/monotonic_clock.hpp"
#include "daemon/control/control_server.hpp"
#include "daemon/event_loop/event_sources.hpp"
#include "daemon/master/manager.hpp"
#include "daemon/master/notify.hpp"
#include "daemon/upgrade/state_memfd.hpp"
#include "daemon/upgrade/upgrade_check.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace forkd {
namespace {

upgrade::SocketFile describe_file(const UnixSocketFile& file) {
    return {true, file.run.path, std::uint64_t(file.dev), std::uint64_t(file.ino)};
}

// The file the old image bound, in its directory checked again; nullopt (never unlinked by
// us) if the directory cannot be trusted any more.
std::optional<UnixSocketFile> socket_file(const upgrade::SocketFile& file) {
    if (!file.owned) return std::nullopt;
    auto run = open_run_path(file.path, CreateMissing::no);
    if (!run) {
        log::warning("upgrade-socket-file", {{"path", file.path}, {"error", run.error().message()}});
        return std::nullopt;
    }
    UnixSocketFile out;
    out.run = std::move(*run);
    out.dev = dev_t(file.dev);
    out.ino = ino_t(file.ino);
    return out;
}

// The environment the new image gets: ours, the state record's descriptor, and what the
// notifier took out of it (NOTIFY_SOCKET, the watchdog).
std::vector<std::string> upgrade_environment(int state_fd, const std::vector<std::string>& notify) {
    std::vector<std::string> env;
    const std::string own = std::string(upgrade::state_environment) + "=";
    for (char** e = environ; e && *e; ++e)
        if (std::strncmp(*e, own.c_str(), own.size()) != 0) env.emplace_back(*e);
    env.push_back(own + std::to_string(state_fd));
    env.insert(env.end(), notify.begin(), notify.end());
    return env;
}

std::vector<char*> pointers(std::vector<std::string>& words) {
    std::vector<char*> out;
    for (auto& w : words) out.push_back(w.data());
    out.push_back(nullptr);
    return out;
}

} // namespace

// The reply waits for the new binary's check, which runs beside the loop (UpgradeCheckRun); the
// master reaps it with its other children and upgrade_checked() goes on from there.
void Manager::upgrade(DeferredReply reply) {
    auto refuse_now = [&](const char* why) {
        if (reply) reply(failure(why));
    };
    if (state_ == State::stopping) return refuse_now("forkd is stopping");
    if (upgrade_check_ || upgrade_exec_) return refuse_now("an upgrade is already under way");
    if (origin_.binary.empty()) return refuse_now("the binary forkd was started from is unknown");
    auto run = UpgradeCheckRun::start(event_.get(), origin_.binary, origin_.argv, upgrade::state_version,
                                      upgrade::check_timeout);
    if (!run) return refuse_upgrade(run.error().message(), reply);
    upgrade_check_ = std::move(*run);
    upgrade_reply_ = std::move(reply);
    log::info("upgrade-check", {{"binary", origin_.binary}, {"pid", long(upgrade_check_->pid())}});
}

void Manager::refuse_upgrade(const std::string& error, const DeferredReply& reply) {
    log::err("upgrade", {{"result", "refused"}, {"binary", origin_.binary}, {"error", error}});
    if (reply) reply(failure("upgrade refused, forkd carries on unchanged: " + error));
}

void Manager::upgrade_checked(int wait_status) {
    const std::unique_ptr<UpgradeCheckRun> run = std::move(upgrade_check_);
    const DeferredReply reply = std::move(upgrade_reply_);
    upgrade_reply_ = nullptr;
    auto checked = run->reaped(wait_status);
    if (run->cancelled()) return;  // a stop cancelled it, and answered already
    if (!checked) return refuse_upgrade(checked.error().message(), reply);
    auto timer = event_loop::add_next_iteration(event_.get(), "upgrade-exec", [this] { exec_upgrade(); });
    if (!timer) {
        if (reply) reply(failure("upgrade: cannot schedule it: " + timer.error().message()));
        return;
    }
    upgrade_exec_ = std::move(*timer);
    upgrade_to_version_ = *checked;
    upgrade_error_.reset();
    if (reply)
        reply(nlohmann::json{{"pid", master_pid_}, {"from_version", forkd_version()}, {"to_version", *checked},
                             {"generation", generation_ + 1}, {"connections", children_.size()}});
}

// The check is killed (and still reaped, before the stop completes); its request is answered now.
void Manager::cancel_upgrade_check() {
    if (!upgrade_check_ || upgrade_check_->cancelled()) return;
    upgrade_check_->cancel();
    log::notice("upgrade", {{"result", "cancelled"}, {"binary", origin_.binary}, {"reason", "stopping"}});
    const DeferredReply reply = std::move(upgrade_reply_);
    upgrade_reply_ = nullptr;
    if (reply) reply(failure("upgrade cancelled: forkd is stopping"));
}

std::vector<std::pair<std::string, std::string>> Manager::runtime_settings() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const std::string& key : set_at_runtime_) {
        const OptionSpec* spec = find_option(key);
        if (!spec || !spec->value.render) continue;
        const auto values = spec->value.render(config_);
        if (values.size() == 1) out.emplace_back(key, values.front());
    }
    return out;
}

upgrade::UpgradeState Manager::capture_state() const {
    upgrade::UpgradeState s;
    s.generation = generation_;
    s.from_version = forkd_version();
    s.binary = origin_.binary;
    s.argv = origin_.argv;
    s.started_ns = started_ns_;
    s.state = state_ == State::draining ? 1 : 0;
    s.pidfile_fd = pidfile_fd_;
    s.pidfile_path = pidfile_path_;
    s.scoreboard_fd = scoreboard_.memfd();
    if (spawner_ && spawner_->running()) {
        s.spawner_pid = spawner_->pid();
        s.spawner_fd = spawner_->socket_fd();
        s.spawner_generation = spawner_->generation();
    }
    s.next_listener_tag = listeners_.next_tag();
    for (const auto& listener : listeners_) {
        upgrade::ListenerState l;
        l.fd = listener->socket.fd.get();
        l.tag = listener->tag;
        l.configured = listener->socket.configured;
        l.bound = listener->socket.bound;
        l.is_unix = listener->socket.is_unix;
        if (listener->socket.unix_file) l.file = describe_file(*listener->socket.unix_file);
        s.listeners.push_back(std::move(l));
    }
    for (const ControlServer* server : {control_.get(), control_read_only_.get()})
        if (server) s.control_sockets.push_back({server->listener_fd(), describe_file(server->socket_file())});
    s.connections = children_.save();
    s.totals = totals_.save();
    s.settings = runtime_settings();
    if (workers_) s.workers = workers_->save();
    return s;
}

void Manager::exec_upgrade() {
    upgrade_exec_.reset();
    const upgrade::UpgradeState state = capture_state();
    auto record = upgrade::write_state_memfd(state);
    std::vector<int> fds = state.descriptors();
    auto fail = [&](const std::string& error) {
        (void)upgrade::set_inherited(fds, false);
        upgrade_error_ = error;
        log::err("upgrade", {{"result", "failed"}, {"binary", origin_.binary}, {"error", error},
                             {"generation", generation_}});
        notifier_->ready();
    };
    notifier_->reloading();
    if (!record) return fail("state record: " + record.error().message());
    fds.push_back(record->get());
    if (Status s = upgrade::set_inherited(fds, true); !s) return fail(s.error().message());
    log::notice("upgrading", {{"from_version", forkd_version()}, {"to_version", upgrade_to_version_},
                              {"generation", generation_ + 1}, {"connections", children_.size()},
                              {"binary", origin_.binary}});
    std::vector<std::string> argv = origin_.argv;
    std::vector<std::string> env = upgrade_environment(record->get(), notifier_->handover_environment());
    auto argv_p = pointers(argv), env_p = pointers(env);
    ::execve(origin_.binary.c_str(), argv_p.data(), env_p.data());
    fail("execve " + origin_.binary + ": " + errno_text(errno));
}

void Manager::restore(upgrade::UpgradeState s) {
    generation_ = s.generation + 1;
    upgraded_from_ = s.from_version;
    origin_ = {s.binary, s.argv};
    started_ns_ = s.started_ns;
    add_signal_sources();
    make_spawner();
    if (s.spawner_pid > 0 && s.spawner_fd >= 0) {
        spawner_->adopt(s.spawner_pid, UniqueFd(s.spawner_fd), s.spawner_generation);
    } else {
        spawner_->start();
    }
    // The old image's forkd-workers finish the connections they serve and go; the new image's
    // own (from the new binary) are started below, once the listeners are back.
    make_workers();
    workers_->adopt(s.workers);
    for (auto& l : s.listeners) {
        ListenSocket socket;
        socket.fd = UniqueFd(l.fd);
        socket.configured = l.configured;
        socket.bound = l.bound;
        socket.is_unix = l.is_unix;
        socket.unix_file = socket_file(l.file);
        listeners_.adopt(std::move(socket), l.tag);
    }
    listeners_.set_next_tag(s.next_listener_tag);
    housekeeping_ = event_loop::value_or_throw(event_loop::add_periodic(
        event_.get(), 1000000, "housekeeping", [this] { on_housekeeping(); }));
    control_gid_ = resolve_control_group(config_.control_group);
    for (std::size_t i = 0; i < s.control_sockets.size() && i < 2; ++i) {
        auto file = socket_file(s.control_sockets[i].file);
        const ControlDoor door = i == 0 ? ControlDoor::full : ControlDoor::read_only;
        auto& server = i == 0 ? control_ : control_read_only_;
        server = std::make_unique<ControlServer>(event_.get(), UniqueFd(s.control_sockets[i].fd),
                                                 file ? std::move(*file) : UnixSocketFile{}, *this,
                                                 ControlServerLimits{}, door);
    }
    for (const auto& connection : s.connections) children_.restore(connection);
    totals_.restore(s.totals);
    if (s.state == 1) state_ = State::draining;
    // Descriptors the record named are ours again: none may leak into a handler.
    (void)upgrade::set_inherited(s.descriptors(), false);
    for (const auto& [key, value] : s.settings)
        if (Status set_back = set(key, value); !set_back)
            log::warning("upgrade-setting-lost", {{"option", key}, {"value", value},
                                                  {"error", set_back.error().message()}});
    // The configuration file as the new image reads it: the upgrade is a reload too.
    if (auto error = rebind_listeners(config_))
        log::err("upgrade-rebind-failed", {{"error", *error}});
    workers_->resize(worker_count(config_));
    configure_workers();  // the adopted ones accept nothing from now on
    if (!control_) control_ = std::make_unique<ControlServer>(event_.get(), config_.control_socket, *this);
    update_accepting();
    if (config_.watch_config) watch_config_file();
    reap_children();  // handlers that ended during the execve
}

} // namespace forkd
