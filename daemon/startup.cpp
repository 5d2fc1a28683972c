// SPDX-License-Identifier: MIT
#include "daemon/startup.hpp"

#include "daemon/master/journal_sink.hpp"

#include "common/log.hpp"
#include "daemon/core/child_setup.hpp"
#include "daemon/daemonize.hpp"
#include "daemon/master/listen_sockets.hpp"
#include "daemon/master/manager.hpp"
#include "daemon/pidfile.hpp"
#include "daemon/upgrade/state_memfd.hpp"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <system_error>

namespace forkd {
namespace {

bool uses_socket_activation(const Config& config) {
    return std::any_of(config.listen.begin(), config.listen.end(), [](const ListenAddress& a) {
        return std::holds_alternative<SystemdSockets>(a);
    });
}

// Handled signals are read from the loop (signalfd), so they must never be delivered normally.
void block_loop_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int signo : Manager::handled_signals()) sigaddset(&set, signo);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

// log-target, or by default stderr in the foreground and syslog when detached.
std::string log_target(const Config& config) {
    return config.log_target.value_or(config.foreground ? "stderr" : "syslog");
}

// Said on the launcher's stderr while it still has one: detached, a log sent to a syslog that
// is not there is lost without a word.
void warn_if_syslog_is_missing(const Config& config) {
    if (config.foreground || log_target(config) != "syslog" || log::syslog_reachable()) return;
    std::fprintf(stderr, "forkd: warning: no syslog daemon listens on /dev/log, so the log of the "
                         "detached daemon is lost; set log-target = FILE or stderr with -f\n");
}

// After the detach (which closes inherited fds) and before anything is logged; a live upgrade's
// new image comes here too, so both log alike (the journal's fields included).
Status use_log_target(const Config& config) {
    log::set_structured_sink(send_to_journal);  // in effect only when stderr is the journal
    const std::string target = log_target(config);
    if (target == "stderr") log::use_stderr();
    else if (target == "syslog") log::use_syslog("forkd");
    else return log::use_file(target);
    return {};
}

// Start-up failures go to the launcher (daemon mode) or stderr (foreground), and to the log.
class StartupReporter {
public:
    explicit StartupReporter(Readiness& readiness, bool foreground)
        : readiness_(readiness), foreground_(foreground) {}
    int fail(int code, const std::string& message) {
        log::err("start-failed", {{"error", message}, {"exit", code}});
        if (foreground_ && log::level() < log::Level::err)
            std::fprintf(stderr, "forkd: %s\n", message.c_str());
        readiness_.failed(code, message);
        return code;
    }

private:
    Readiness& readiness_;
    bool foreground_;
};

// Our children now (/proc/self/task/*/children, the master being single-threaded).
std::vector<pid_t> own_children() {
    std::vector<pid_t> out;
    std::ifstream in("/proc/self/task/" + std::to_string(::getpid()) + "/children");
    for (pid_t pid; in >> pid;) out.push_back(pid);
    return out;
}

std::string comm_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(in, name);
    return name;
}

// A live upgrade's record the new image cannot read (never after a passed check, short of a
// corrupt record): the new image restarts in place, loudly. Every inherited descriptor is
// closed, the old forkd-spawner is ended (its built-in handlers die with it), and exec'd
// handlers, still our children, finish their connections untracked; then a normal start.
void restart_after_rejected_state(const std::string& error) {
    std::size_t handlers = 0;
    for (pid_t child : own_children()) {
        if (comm_of(child) != "forkd-spawner") {
            ++handlers;
            continue;
        }
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
    }
    log::err("upgrade-state-rejected", {{"error", error}, {"action", "restart"},
                                        {"untracked_handlers", handlers},
                                        {"note", "built-in connections ended with the old spawner"}});
    close_inherited_fds({});
}

// The new image of a live upgrade: everything comes from the record (upgrade_state.hpp).
int resume_after_upgrade(const CommandLine& command_line, Config config, upgrade::UpgradeState state) {
    std::optional<Pidfile> pidfile;
    std::optional<Manager> manager;
    try {
        pidfile.emplace(Pidfile::adopt(state.pidfile_path, UniqueFd(std::exchange(state.pidfile_fd, -1))));
        manager.emplace(command_line, config, UniqueFd(std::exchange(state.scoreboard_fd, -1)));
        manager->set_pidfile(pidfile->fd(), pidfile->path());
        manager->restore(std::move(state));
    } catch (const std::exception& e) {
        log::err("upgrade-resume-failed", {{"error", e.what()}});
        manager.reset();
        if (pidfile) pidfile->remove();
        return exit_startup;
    }
    const int code = manager->run();
    manager.reset();
    pidfile->remove();
    return code;
}

int start_daemon(const CommandLine& command_line, Config config, Manager::Origin origin, bool detach);

} // namespace

int run_daemon(const CommandLine& command_line, Config config, Manager::Origin origin, int state_fd) {
    if (state_fd >= 0) {
        // Already detached (or under systemd): no fork, no readiness pipe, and no descriptor is
        // closed until the record says which are ours.
        log::set_level(config.log_level);
        if (const Status logging = use_log_target(config); !logging)
            std::fprintf(stderr, "forkd: %s\n", logging.error().message().c_str());
        block_loop_signals();
        record_signal_dispositions();
        auto state = upgrade::read_state_fd(state_fd);
        if (state) return resume_after_upgrade(command_line, std::move(config), std::move(*state));
        restart_after_rejected_state(state.error().message());
        return start_daemon(command_line, std::move(config), std::move(origin), false);  // in place
    }
    return start_daemon(command_line, std::move(config), std::move(origin), !config.foreground);
}

namespace {

int start_daemon(const CommandLine& command_line, Config config, Manager::Origin origin, bool detach) {
    log::set_level(config.log_level);
    std::vector<int> keep;
    if (uses_socket_activation(config)) keep = systemd_listen_fds();
    Readiness readiness;
    if (!detach) {
        if (config.foreground) log::use_stderr();
        close_inherited_fds(keep);
    } else {
        warn_if_syslog_is_missing(config);
        auto detached = daemonize(keep);
        if (!detached) {
            std::fprintf(stderr, "forkd: cannot detach: %s\n", detached.error().message().c_str());
            return exit_startup;
        }
        readiness = std::move(*detached);
    }
    const Status logging = use_log_target(config);
    block_loop_signals();
    record_signal_dispositions();
    StartupReporter report(readiness, config.foreground);
    if (!logging) return report.fail(exit_startup, logging.error().message());

    std::optional<Pidfile> pidfile;
    try {
        pidfile.emplace(Pidfile::acquire(config.pidfile));
    } catch (const AlreadyRunning& e) {
        return report.fail(exit_running, e.what());
    } catch (const std::exception& e) {
        return report.fail(exit_startup, e.what());
    }

    std::optional<Manager> manager;
    try {
        manager.emplace(command_line, config);
        manager->set_origin(std::move(origin));
        manager->set_pidfile(pidfile->fd(), pidfile->path());
        manager->open();
    } catch (const ConfigError& e) {
        manager.reset();
        pidfile->remove();
        return report.fail(exit_config, e.what());
    } catch (const std::exception& e) {
        manager.reset();
        pidfile->remove();
        return report.fail(exit_startup, e.what());
    }
    readiness.ready();
    const int code = manager->run();
    manager.reset();  // closes listeners and the control socket
    pidfile->remove();
    return code;
}

} // namespace

} // namespace forkd
