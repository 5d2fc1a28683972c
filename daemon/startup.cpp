// SPDX-License-Identifier: MIT
#include "daemon/startup.hpp"

#include "daemon/master/journal_sink.hpp"

#include "common/log.hpp"
#include "daemon/core/child_setup.hpp"
#include "daemon/daemonize.hpp"
#include "daemon/master/listen_sockets.hpp"
#include "daemon/master/manager.hpp"
#include "daemon/pidfile.hpp"

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

// After the detach (which closes inherited fds) and before anything is logged.
Status use_log_target(const Config& config) {
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

} // namespace

int run_daemon(const CommandLine& command_line, Config config) {
    log::set_level(config.log_level);
    std::vector<int> keep;
    if (uses_socket_activation(config)) keep = systemd_listen_fds();
    Readiness readiness;
    if (config.foreground) {
        log::use_stderr();
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
    log::set_structured_sink(send_to_journal);  // in effect only when stderr is the journal
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

} // namespace forkd
