// SPDX-License-Identifier: MIT
#pragma once
// The daemon under test: the real forkd started in a temp dir with a harness config, in the
// foreground (readiness: READY=1 on a test NOTIFY_SOCKET) or in daemon mode (readiness: the
// launcher's exit and the pidfile); its log, notifications, signals, exit and process tree.
// Every process it starts is stopped by pid in the destructor.
#include "common/base/unique_fd.hpp"
#include "harness/files.hpp"
#include "harness/wait.hpp"

#include <sys/resource.h>
#include <sys/types.h>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace forkd::test {

struct DaemonOptions {
    // Config lines beyond the ones the harness adds (pidfile, control-socket in the temp dir,
    // log-level = debug). Default: "listen = 127.0.0.1:0".
    std::vector<std::string> config_lines = {"listen = 127.0.0.1:0"};
    std::vector<std::string> extra_args;       // appended to the command line
    bool foreground = true;                    // false: classic daemon mode (no -f)
    std::map<std::string, std::string> env;    // extra environment for forkd
    bool expect_ready = true;                  // false: start and let the test inspect failure
    Millis ready_timeout = 10s;
    std::optional<rlim_t> rlimit_nofile;       // RLIMIT_NOFILE set in the child before exec
    // Words run before forkd's argv, which they must exec (e.g. a shell that opens an fd first).
    std::vector<std::string> launch_prefix;
    // Runs after the temp dir and config exist, before forkd starts (e.g. plant a stale pidfile).
    std::function<void(const TempDir&)> before_start;
};

// The default options (listen = 127.0.0.1:0) plus these config lines.
DaemonOptions config(std::vector<std::string> lines);

class Daemon {
public:
    explicit Daemon(DaemonOptions options = {});
    ~Daemon();  // SIGTERM, wait up to 15 s, then SIGKILL; then SIGKILL leftover children by pid
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    pid_t pid() const { return pid_; }             // the daemon (from the pidfile in daemon mode)
    const TempDir& dir() const { return dir_; }
    std::string config_path() const { return dir_.file("forkd.conf"); }
    std::string pidfile() const { return dir_.file("forkd.pid"); }
    std::string control_socket() const { return dir_.file("forkd.sock"); }
    std::string log_path() const { return dir_.file("forkd.log"); }  // foreground stderr

    // Port of the i-th TCP listener, from the "event=listening" log lines.
    std::uint16_t port(std::size_t index = 0) const;
    std::vector<std::string> listening() const;     // every "address=" of those lines

    std::string log() const;
    bool wait_log(const std::string& needle, Millis timeout = 10s) const;
    std::size_t count_log(const std::string& needle) const;
    std::vector<std::string> log_lines(const std::string& needle) const;  // lines containing it
    // The port of the first "event=EVENT ... address=HOST:PORT" line (waited for), 0 if none:
    // where a listener bound to port 0 (metrics-listen, agent-listen) ended up.
    std::uint16_t logged_port(const std::string& event) const;
    // The event=refused line naming this peer ("IP:PORT", see peer_of()), "" if none.
    std::string refusal_line(const std::string& peer) const;
    // Datagrams received on the test NOTIFY_SOCKET, in order ("READY=1", "STATUS=...").
    std::vector<std::string> notifications();
    bool wait_notification(const std::string& needle, Millis timeout = 10s);

    // Rewrites the config file (same harness lines + these) and sends SIGHUP.
    void rewrite_config(const std::vector<std::string>& config_lines);
    // The lines the harness puts first in every config: pidfile, control socket, log level.
    std::string harness_config_lines() const;
    void signal(int sig) const;
    // Waits for the daemon to exit; returns its exit status (or 128+signal), nullopt on timeout.
    // In daemon mode the daemon is not our child: its status is unknowable and -1 is returned
    // once it is gone (a zombie left to a non-reaping init counts as gone).
    std::optional<int> wait_exit(Millis timeout = 15s);
    bool running() const;
    // Launcher result in daemon mode, or exit of a foreground daemon that failed to start.
    int launcher_exit_code() const { return launcher_exit_; }
    std::string launcher_stderr() const { return launcher_stderr_; }

    // Live handler processes (from /proc/*/stat ppid), zombies excluded / included: the
    // daemon's children other than forkd-spawner, and forkd-spawner's children.
    std::vector<pid_t> children(bool include_zombies = false) const;
    // The daemon's forkd-spawner, -1 if it has none.
    pid_t spawner_pid() const;
    std::vector<pid_t> zombies() const;
    // Notifications whose text contains needle (after draining the socket).
    std::size_t count_notifications(const std::string& needle);

private:
    void write_config(const std::vector<std::string>& config_lines);
    void start();
    void start_foreground(const std::vector<std::string>& argv, const std::vector<std::string>& envp);
    void start_daemon_mode(const std::vector<std::string>& argv, const std::vector<std::string>& envp);
    [[noreturn]] void fail_start(const std::string& why);
    void stop_everything();
    void drain_notifications();
    int exit_status_ = -1;
    TempDir dir_;
    DaemonOptions options_;
    pid_t pid_ = -1;
    bool reaped_ = false;
    int launcher_exit_ = -1;
    std::string launcher_stderr_;
    UniqueFd notify_socket_;
    UniqueFd syslog_socket_;  // daemon mode: what forkd's check for a syslog daemon finds
    std::vector<std::string> notifications_;
};

} // namespace forkd::test
