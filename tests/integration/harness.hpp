// SPDX-License-Identifier: MIT
#pragma once
// The integration harness: starts the real forkd/forkctl binaries in a temp dir, on loopback
// with port 0 (the daemon logs "event=listening address=HOST:PORT"), and synchronises on
// readiness (READY=1 on a test NOTIFY_SOCKET, the pidfile, the control socket), never on sleeps.
// Every process it starts is stopped by pid in the destructor.
#include "common/base/unique_fd.hpp"

#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <sys/types.h>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace forkd::test {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// A short private directory under /tmp (UNIX socket paths must stay under 108 bytes).
class TempDir {
public:
    TempDir();
    ~TempDir();  // removes the tree
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
private:
    std::string path_;
};

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

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
    // Datagrams received on the test NOTIFY_SOCKET, in order ("READY=1", "STATUS=...").
    std::vector<std::string> notifications();
    bool wait_notification(const std::string& needle, Millis timeout = 10s);

    // Rewrites the config file (same harness lines + these) and sends SIGHUP.
    void rewrite_config(const std::vector<std::string>& config_lines);
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
    std::vector<std::string> notifications_;
};

// Loopback clients.
// timeout: for the handshake (a client whose SYN waits behind a full backlog needs longer).
UniqueFd connect_tcp(std::uint16_t port, const std::string& host = "127.0.0.1", Millis timeout = 5s);
UniqueFd connect_unix(const std::string& path);
// Connects from a chosen local address (e.g. 127.0.0.2, to be another source on loopback).
UniqueFd connect_tcp_from(std::uint16_t port, const std::string& host, const std::string& source);
// Sends payload and reads back exactly as many bytes; true when they are equal.
bool echo_roundtrip(int fd, const std::string& payload, Millis timeout = 5s);
// A client the daemon (an echo service on TCP) serves: connected and one echo round trip done;
// invalid if not.
UniqueFd served_client(const Daemon& daemon, const std::string& payload);
bool send_all(int fd, const std::string& data);
// Reads until EOF or timeout; what arrived so far either way.
std::string read_until_eof(int fd, Millis timeout = 5s);
// Reads at least n bytes (or until EOF/timeout).
std::string read_n(int fd, std::size_t n, Millis timeout = 5s);
// True when the peer closed (EOF or reset) within timeout.
bool wait_closed(int fd, Millis timeout = 5s);

struct CommandResult {
    int exit_code = -1;   // 128+signal if killed
    std::string out, err;
};
// Runs argv with a timeout (killed by pid after it), capturing stdout and stderr.
CommandResult run(const std::vector<std::string>& argv, Millis timeout = 20s,
                  const std::map<std::string, std::string>& env = {});
// forkctl -s <daemon's control socket> ARGS...
CommandResult forkctl(const Daemon& daemon, const std::vector<std::string>& args,
                      Millis timeout = 20s);
// `forkctl --json status` parsed; nullopt (with the reason in *why) if forkctl failed.
std::optional<nlohmann::json> status_json(const Daemon& daemon, std::string* why = nullptr);

// /proc helpers. state: the one-letter state of /proc/PID/stat, nullopt if there is no such pid.
std::optional<char> proc_state(pid_t pid);
bool process_alive(pid_t pid);                     // exists and is not a zombie
pid_t proc_ppid(pid_t pid);                        // -1 if gone
std::vector<pid_t> proc_children(pid_t parent, bool include_zombies = false);
std::vector<pid_t> proc_descendants(pid_t root);   // live ones, recursively
std::uint64_t proc_cpu_ticks(pid_t pid);           // utime + stime (clock ticks)
std::size_t proc_fd_count(pid_t pid);
// A TCP port on 127.0.0.1 that was free a moment ago (for daemon-mode tests that cannot read
// the log, and for "port in use" tests hold the returned socket instead: see bind_port()).
std::uint16_t free_tcp_port();
UniqueFd listen_tcp(std::uint16_t port = 0, const std::string& host = "127.0.0.1");
std::uint16_t local_port(int fd);
// SysV IPC (ipcs) and POSIX (/dev/shm) objects, one string each, for before/after comparison.
std::vector<std::string> ipc_objects();

// Polls predicate every 10 ms until true or timeout.
template <class Pred>
bool eventually(Pred pred, Millis timeout = 10s);

} // namespace forkd::test

#include <thread>
template <class Pred>
bool forkd::test::eventually(Pred pred, Millis timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}
