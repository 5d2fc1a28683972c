// SPDX-License-Identifier: MIT
#include "harness/daemon.hpp"

#include "common/base/error.hpp"
#include "harness/child_process.hpp"
#include "harness/commands.hpp"
#include "harness/log_text.hpp"
#include "harness/proc.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace forkd::test {

namespace {


const std::vector<std::string> kInheritedEnvToDrop = {
    "NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID",
    "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"};

// A datagram socket bound at path, readable by the harness without blocking, writable by anyone
// (a test may run forkd as another user with launch_prefix).
UniqueFd bind_datagram_socket(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) throw std::runtime_error(system_error("socket").message());
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
        throw std::runtime_error(system_error("bind " + path).message());
    ::chmod(path.c_str(), 0666);
    return fd;
}

} // namespace

DaemonOptions config(std::vector<std::string> lines) {
    DaemonOptions o;
    o.config_lines.insert(o.config_lines.end(), lines.begin(), lines.end());
    return o;
}

Daemon::Daemon(DaemonOptions options) : options_(std::move(options)) {
    write_config(options_.config_lines);
    if (options_.before_start) options_.before_start(dir_);
    start();
}

Daemon::~Daemon() {
    stop_everything();
}

std::string Daemon::harness_config_lines() const {
    return "pidfile = " + pidfile() + "\n" + "control-socket = " + control_socket() + "\n" +
           "log-level = debug\n";
}

void Daemon::write_config(const std::vector<std::string>& config_lines) {
    std::string text = harness_config_lines();
    for (const auto& line : config_lines) text += line + "\n";
    write_file(config_path(), text);
}

void Daemon::start() {
    std::vector<std::string> argv = options_.launch_prefix;
    argv.insert(argv.end(), {FORKD_BINARY, "-c", config_path()});
    if (options_.foreground) argv.push_back("-f");
    argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());

    std::map<std::string, std::string> env = options_.env;
    if (options_.foreground) {
        const std::string notify_path = dir_.file("notify");
        notify_socket_ = bind_datagram_socket(notify_path);
        env.emplace("NOTIFY_SOCKET", notify_path);
        start_foreground(argv, build_env(env, kInheritedEnvToDrop));
    } else {
        // Whether the host runs a syslog daemon is not the tests' business: forkd's check for one
        // finds this stand-in instead (a test may point it elsewhere with env).
        const std::string syslog_path = dir_.file("syslog");
        syslog_socket_ = bind_datagram_socket(syslog_path);
        env.emplace("FORKD_TEST_SYSLOG_PATH", syslog_path);
        start_daemon_mode(argv, build_env(env, kInheritedEnvToDrop));
    }
}

void Daemon::start_foreground(const std::vector<std::string>& argv,
                              const std::vector<std::string>& envp) {
    ExecPlan plan(argv, envp);
    UniqueFd log_fd = open_output(log_path());
    pid_ = spawn(plan, {-1, log_fd.get(), log_fd.get(), options_.rlimit_nofile});
    if (!options_.expect_ready) return;

    auto deadline = Clock::now() + options_.ready_timeout;
    for (;;) {
        drain_notifications();
        for (const auto& n : notifications_) {
            for (const auto& line : lines_of(n))
                if (line == "READY=1") return;
        }
        if (auto st = try_reap(pid_)) {
            reaped_ = true;
            exit_status_ = *st;
            launcher_exit_ = *st;
            fail_start("forkd exited with status " + std::to_string(*st) + " before READY=1");
        }
        if (Clock::now() >= deadline) fail_start("no READY=1 within the ready timeout");
        pollfd p{notify_socket_.get(), POLLIN, 0};
        ::poll(&p, 1, std::min(50, remaining_ms(deadline)));
    }
}

void Daemon::start_daemon_mode(const std::vector<std::string>& argv,
                               const std::vector<std::string>& envp) {
    ExecPlan plan(argv, envp);
    const std::string err_path = dir_.file("launcher.err");
    UniqueFd err_fd = open_output(err_path);
    UniqueFd log_fd = open_output(log_path());
    pid_t launcher = spawn(plan, {-1, log_fd.get(), err_fd.get(), options_.rlimit_nofile});
    auto st = reap_within(launcher, options_.ready_timeout);
    if (!st) {
        ::kill(launcher, SIGKILL);
        reap_within(launcher, 5s);
        launcher_stderr_ = read_file(err_path);
        fail_start("launcher did not exit within the ready timeout");
    }
    launcher_exit_ = *st;
    launcher_stderr_ = read_file(err_path);
    if (launcher_exit_ == 0) {
        std::string text = read_file(pidfile());
        try {
            pid_ = static_cast<pid_t>(std::stol(text));
        } catch (const std::exception&) {
            fail_start("launcher exited 0 but the pidfile holds '" + text + "'");
        }
    } else if (options_.expect_ready) {
        fail_start("launcher exited with status " + std::to_string(launcher_exit_));
    }
}

void Daemon::fail_start(const std::string& why) {
    std::string message = "forkd did not start: " + why + "\n--- config:\n" +
                          read_file(config_path()) + "--- log:\n" + log() +
                          (launcher_stderr_.empty() ? "" : "--- launcher stderr:\n" + launcher_stderr_);
    stop_everything();
    throw std::runtime_error(message);
}

void Daemon::stop_everything() {
    if (pid_ <= 0) return;
    std::vector<pid_t> leftovers = proc_descendants(pid_);
    if (running()) {
        ::kill(pid_, SIGTERM);
        if (!wait_exit(15s)) {
            leftovers = proc_descendants(pid_);
            ::kill(pid_, SIGKILL);
            wait_exit(5s);
        }
    } else if (!reaped_ && options_.foreground) {
        wait_exit(1s);
    }
    for (pid_t child : leftovers) {
        if (process_alive(child)) ::kill(child, SIGKILL);
    }
}

std::optional<int> Daemon::wait_exit(Millis timeout) {
    if (pid_ <= 0) return exit_status_;
    if (reaped_) return exit_status_;
    if (options_.foreground) {
        auto st = reap_within(pid_, timeout);
        if (st) {
            reaped_ = true;
            exit_status_ = *st;
        }
        return st;
    }
    if (!eventually([&] { return !process_alive(pid_); }, timeout)) return std::nullopt;
    reaped_ = true;
    exit_status_ = -1;
    return exit_status_;
}

bool Daemon::running() const {
    if (pid_ <= 0 || reaped_) return false;
    return process_alive(pid_);
}

void Daemon::signal(int sig) const {
    if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

void Daemon::rewrite_config(const std::vector<std::string>& config_lines) {
    write_config(config_lines);
    signal(SIGHUP);
}

std::string Daemon::log() const { return read_file(log_path()); }

bool Daemon::wait_log(const std::string& needle, Millis timeout) const {
    return eventually([&] { return log().find(needle) != std::string::npos; }, timeout);
}

std::size_t Daemon::count_log(const std::string& needle) const {
    std::string text = log();
    std::size_t count = 0;
    for (auto pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + needle.size()))
        ++count;
    return count;
}

std::vector<std::string> Daemon::log_lines(const std::string& needle) const {
    std::vector<std::string> out;
    for (const auto& line : lines_of(log()))
        if (line.find(needle) != std::string::npos) out.push_back(line);
    return out;
}

std::uint16_t Daemon::logged_port(const std::string& event) const {
    const std::string needle = "event=" + event;
    if (!wait_log(needle)) return 0;
    for (const auto& line : log_lines(needle)) {
        const auto at = line.find(" address=");
        if (at == std::string::npos) continue;
        const std::string address = line.substr(at + 9, line.find(' ', at + 1) - (at + 9));
        const std::string port = address.substr(address.rfind(':') + 1);
        if (!port.empty() && port.find_first_not_of("0123456789") == std::string::npos)
            return static_cast<std::uint16_t>(std::stoi(port));
    }
    return 0;
}

std::string Daemon::refusal_line(const std::string& peer) const {
    for (const auto& line : log_lines("event=refused"))
        if (line.find("peer=" + peer) != std::string::npos) return line;
    return "";
}

std::vector<std::string> Daemon::listening() const {
    std::vector<std::string> out;
    for (const auto& line : lines_of(log())) {
        if (line.find("event=listening") == std::string::npos) continue;
        if (auto a = field_value(line, "address")) out.push_back(*a);
    }
    return out;
}

std::uint16_t Daemon::port(std::size_t index) const {
    auto tcp_ports = [&] {
        std::vector<std::uint16_t> ports;
        for (const auto& a : listening())
            if (a.rfind("unix:", 0) != 0) ports.push_back(port_of_address(a));
        return ports;
    };
    std::vector<std::uint16_t> ports;
    eventually([&] { ports = tcp_ports(); return ports.size() > index; }, 3s);
    if (ports.size() > index) return ports[index];
    if (!options_.foreground) {
        // Daemon mode logs to syslog: ask the control socket instead.
        std::vector<std::uint16_t> from_ctl;
        if (auto status = status_json(*this); status && status->contains("listen")) {
            for (const auto& a : status->at("listen")) {
                auto s = a.get<std::string>();
                if (s.rfind("unix:", 0) != 0) from_ctl.push_back(port_of_address(s));
            }
        }
        if (from_ctl.size() > index) return from_ctl[index];
    }
    throw std::runtime_error("no TCP listener #" + std::to_string(index) +
                             " in the log:\n" + log());
}

void Daemon::drain_notifications() {
    if (!notify_socket_) return;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(notify_socket_.get(), buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0) break;
        notifications_.emplace_back(buf, static_cast<std::size_t>(n));
    }
}

std::vector<std::string> Daemon::notifications() {
    drain_notifications();
    return notifications_;
}

std::size_t Daemon::count_notifications(const std::string& needle) {
    drain_notifications();
    return static_cast<std::size_t>(std::count_if(
        notifications_.begin(), notifications_.end(),
        [&](const std::string& n) { return n.find(needle) != std::string::npos; }));
}

bool Daemon::wait_notification(const std::string& needle, Millis timeout) {
    return eventually([&] { return count_notifications(needle) > 0; }, timeout);
}

namespace {

bool is_spawner(pid_t pid) { return proc_comm(pid) == "forkd-spawner"; }

} // namespace

pid_t Daemon::spawner_pid() const {
    if (pid_ <= 0) return -1;
    for (pid_t p : proc_children(pid_, false))
        if (is_spawner(p)) return p;
    return -1;
}

// Built-in handlers are forkd-spawner's children; exec'd handlers are the master's own.
std::vector<pid_t> Daemon::children(bool include_zombies) const {
    if (pid_ <= 0) return {};
    std::vector<pid_t> handlers;
    for (pid_t p : proc_children(pid_, include_zombies)) {
        if (!is_spawner(p)) {
            handlers.push_back(p);
            continue;
        }
        auto built_in = proc_children(p, include_zombies);
        handlers.insert(handlers.end(), built_in.begin(), built_in.end());
    }
    return handlers;
}

std::vector<pid_t> Daemon::zombies() const {
    std::vector<pid_t> out;
    for (pid_t p : children(true))
        if (proc_state(p) == 'Z') out.push_back(p);
    return out;
}

} // namespace forkd::test
