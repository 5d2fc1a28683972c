// SPDX-License-Identifier: MIT
// The integration harness: real processes, temp dirs, loopback sockets, /proc inspection.
#include "harness.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

extern char** environ;

namespace forkd::test {

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

// Non-blocking reap of our own child; the status once it has exited.
std::optional<int> try_reap(pid_t pid) {
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid) return decode_status(status);
    return std::nullopt;
}

std::optional<int> reap_within(pid_t pid, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (auto st = try_reap(pid)) return st;
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(5ms);
    }
}

// Everything the child needs is prepared before fork: after it only async-signal-safe calls.
struct ExecPlan {
    std::vector<std::string> argv, envp;
    std::vector<char*> argv_ptrs, envp_ptrs;
    ExecPlan(std::vector<std::string> a, std::vector<std::string> e)
        : argv(std::move(a)), envp(std::move(e)) {
        for (auto& s : argv) argv_ptrs.push_back(s.data());
        argv_ptrs.push_back(nullptr);
        for (auto& s : envp) envp_ptrs.push_back(s.data());
        envp_ptrs.push_back(nullptr);
    }
};

// Our environment with overrides; an empty override value with key prefixed by '-' removes it.
std::vector<std::string> build_env(const std::map<std::string, std::string>& overrides,
                                   const std::vector<std::string>& remove = {}) {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq == std::string::npos) continue;
        env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& name : remove) env.erase(name);
    for (const auto& [k, v] : overrides) env[k] = v;
    std::vector<std::string> out;
    for (const auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
}

struct ChildIo {
    int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
    std::optional<rlim_t> nofile;
};

// fork + exec (PATH search); returns the pid. The child closes every other fd.
pid_t spawn(const ExecPlan& plan, const ChildIo& io) {
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(errno_text("fork"));
    if (pid > 0) return pid;

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
    }
    int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(io.stdin_fd >= 0 ? io.stdin_fd : null_fd, 0);
    ::dup2(io.stdout_fd >= 0 ? io.stdout_fd : null_fd, 1);
    ::dup2(io.stderr_fd >= 0 ? io.stderr_fd : null_fd, 2);
    ::close_range(3, ~0U, 0);
    if (io.nofile) {
        struct rlimit rl{*io.nofile, *io.nofile};
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(126);
    }
    ::execvpe(plan.argv_ptrs[0], plan.argv_ptrs.data(), plan.envp_ptrs.data());
    ::_exit(127);
}

UniqueFd open_output(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(errno_text("open " + path));
    return UniqueFd(fd);
}

// "pid (comm) S ppid ...": comm may hold spaces and parens, so split at the last ')'.
struct ProcStat {
    std::string comm;
    char state = '?';
    pid_t ppid = -1;
    std::uint64_t utime = 0, stime = 0;
};

std::optional<ProcStat> read_stat(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    if (!in) return std::nullopt;
    std::string line;
    std::getline(in, line);
    auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(line.substr(close + 1));
    ProcStat st;
    if (auto open = line.find('('); open != std::string::npos && open < close)
        st.comm = line.substr(open + 1, close - open - 1);
    rest >> st.state >> st.ppid;
    // fields 5..13 (pgrp session tty tpgid flags minflt cminflt majflt cmajflt), then utime stime
    std::string skip;
    for (int i = 0; i < 9; ++i) rest >> skip;
    rest >> st.utime >> st.stime;
    if (!rest && st.ppid < 0) return std::nullopt;
    return st;
}

std::vector<pid_t> all_pids() {
    std::vector<pid_t> pids;
    DIR* d = ::opendir("/proc");
    if (!d) return pids;
    while (auto* e = ::readdir(d)) {
        char* end = nullptr;
        long v = std::strtol(e->d_name, &end, 10);
        if (end && *end == '\0' && v > 0) pids.push_back(static_cast<pid_t>(v));
    }
    ::closedir(d);
    return pids;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
}

std::optional<std::string> field_value(const std::string& line, const std::string& key) {
    auto pos = line.find(" " + key + "=");
    if (pos == std::string::npos) {
        if (line.rfind(key + "=", 0) != 0) return std::nullopt;
        pos = 0;
    } else {
        pos += 1;
    }
    pos += key.size() + 1;
    if (pos < line.size() && line[pos] == '"') {
        auto end = line.find('"', pos + 1);
        return line.substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1);
    }
    auto end = line.find(' ', pos);
    return line.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

std::uint16_t port_of_address(const std::string& address) {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) return 0;
    return static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)));
}

const std::vector<std::string> kInheritedEnvToDrop = {
    "NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID",
    "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"};

} // namespace

// ---------------------------------------------------------------- files and dirs

TempDir::TempDir() {
    char tmpl[] = "/tmp/forkd-t.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error(errno_text("mkdtemp"));
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::trunc | std::ios::binary);
    if (!out) throw std::runtime_error("cannot write " + path);
    out << content;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// ---------------------------------------------------------------- Daemon

Daemon::Daemon(DaemonOptions options) : options_(std::move(options)) {
    write_config(options_.config_lines);
    if (options_.before_start) options_.before_start(dir_);
    start();
}

Daemon::~Daemon() {
    stop_everything();
}

void Daemon::write_config(const std::vector<std::string>& config_lines) {
    std::string text = "pidfile = " + pidfile() + "\n" +
                       "control-socket = " + control_socket() + "\n" +
                       "log-level = debug\n";
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
        int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) throw std::runtime_error(errno_text("socket"));
        notify_socket_.reset(fd);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::strncpy(sa.sun_path, notify_path.c_str(), sizeof(sa.sun_path) - 1);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
            throw std::runtime_error(errno_text("bind " + notify_path));
        // A test may run forkd as another user (launch_prefix with setpriv); it must still
        // be able to report READY=1.
        ::chmod(notify_path.c_str(), 0666);
        env.emplace("NOTIFY_SOCKET", notify_path);
        start_foreground(argv, build_env(env, kInheritedEnvToDrop));
    } else {
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
        auto r = forkctl(*this, {"--json", "status"});
        try {
            auto j = nlohmann::json::parse(r.out);
            std::vector<std::uint16_t> from_ctl;
            for (const auto& a : j.at("listen")) {
                auto s = a.get<std::string>();
                if (s.rfind("unix:", 0) != 0) from_ctl.push_back(port_of_address(s));
            }
            if (from_ctl.size() > index) return from_ctl[index];
        } catch (const std::exception&) {
        }
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

bool is_spawner(pid_t pid) {
    auto st = read_stat(pid);
    return st && st->comm == "forkd-spawner";
}

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

// ---------------------------------------------------------------- /proc

std::optional<char> proc_state(pid_t pid) {
    auto st = read_stat(pid);
    if (!st) return std::nullopt;
    return st->state;
}

bool process_alive(pid_t pid) {
    auto s = proc_state(pid);
    return s && *s != 'Z' && *s != 'X';
}

pid_t proc_ppid(pid_t pid) {
    auto st = read_stat(pid);
    return st ? st->ppid : -1;
}

std::vector<pid_t> proc_children(pid_t parent, bool include_zombies) {
    std::vector<pid_t> out;
    for (pid_t p : all_pids()) {
        auto st = read_stat(p);
        if (!st || st->ppid != parent) continue;
        if (!include_zombies && (st->state == 'Z' || st->state == 'X')) continue;
        out.push_back(p);
    }
    return out;
}

std::vector<pid_t> proc_descendants(pid_t root) {
    std::map<pid_t, std::vector<pid_t>> kids;
    for (pid_t p : all_pids()) {
        auto st = read_stat(p);
        if (st && st->state != 'Z' && st->state != 'X') kids[st->ppid].push_back(p);
    }
    std::vector<pid_t> out, todo = {root};
    while (!todo.empty()) {
        pid_t p = todo.back();
        todo.pop_back();
        for (pid_t c : kids[p]) {
            out.push_back(c);
            todo.push_back(c);
        }
    }
    return out;
}

std::uint64_t proc_cpu_ticks(pid_t pid) {
    auto st = read_stat(pid);
    return st ? st->utime + st->stime : 0;
}

std::size_t proc_fd_count(pid_t pid) {
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++n;
    return n;
}

std::vector<std::string> ipc_objects() {
    std::vector<std::string> out;
    auto r = run({"ipcs"}, 10s);
    for (const auto& line : lines_of(r.out)) {
        // Object rows start with a hex key; headers and blank lines do not.
        if (line.rfind("0x", 0) == 0) out.push_back("sysv " + line);
    }
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/dev/shm", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        out.push_back("shm " + it->path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

// ---------------------------------------------------------------- sockets

namespace {

bool fill_inet(const std::string& host, std::uint16_t port, sockaddr_storage& ss, socklen_t& len) {
    std::memset(&ss, 0, sizeof(ss));
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof(sockaddr_in);
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    std::string h = host;
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

UniqueFd connect_with_timeout(int family, const sockaddr* sa, socklen_t len, Millis timeout) {
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return {};
    if (::connect(fd.get(), sa, len) != 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) return {};
        pollfd p{fd.get(), POLLOUT, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
        int err = 0;
        socklen_t elen = sizeof(err);
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) {
            errno = err;
            return {};
        }
    }
    int flags = ::fcntl(fd.get(), F_GETFL);
    ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

} // namespace

UniqueFd connect_tcp(std::uint16_t port, const std::string& host, Millis timeout) {
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!fill_inet(host, port, ss, len)) return {};
    return connect_with_timeout(ss.ss_family, reinterpret_cast<sockaddr*>(&ss), len, timeout);
}

UniqueFd connect_unix(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof(sa.sun_path)) return {};
    std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
    return connect_with_timeout(AF_UNIX, reinterpret_cast<sockaddr*>(&sa), sizeof(sa), 5s);
}

UniqueFd connect_tcp_from(std::uint16_t port, const std::string& host, const std::string& source) {
    sockaddr_storage ss, local;
    socklen_t len = 0, local_len = 0;
    if (!fill_inet(host, port, ss, len) || !fill_inet(source, 0, local, local_len)) return {};
    UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), local_len) != 0) return {};
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        if (errno != EINPROGRESS) return {};
        pollfd p{fd.get(), POLLOUT, 0};
        if (::poll(&p, 1, 5000) != 1) return {};
        int err = 0;
        socklen_t elen = sizeof(err);
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) return {};
    }
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    return fd;
}

bool send_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

namespace {

// Reads what arrives until stop(buffer) is true, EOF/error, or the deadline.
template <class Stop>
std::string read_while(int fd, Millis timeout, Stop stop) {
    std::string out;
    auto deadline = Clock::now() + timeout;
    char buf[65536];
    while (!stop(out)) {
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

} // namespace

std::string read_until_eof(int fd, Millis timeout) {
    return read_while(fd, timeout, [](const std::string&) { return false; });
}

std::string read_n(int fd, std::size_t n, Millis timeout) {
    return read_while(fd, timeout, [n](const std::string& s) { return s.size() >= n; });
}

bool echo_roundtrip(int fd, const std::string& payload, Millis timeout) {
    return send_all(fd, payload) && read_n(fd, payload.size(), timeout) == payload;
}

UniqueFd served_client(const Daemon& daemon, const std::string& payload) {
    auto fd = connect_tcp(daemon.port());
    if (!fd.valid() || !echo_roundtrip(fd.get(), payload)) return UniqueFd();
    return fd;
}

bool wait_closed(int fd, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    char buf[65536];
    for (;;) {
        pollfd p{fd, POLLIN | POLLRDHUP, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return false;
        if (r < 0) return false;
        ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0) return true;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                if (Clock::now() >= deadline) return false;
                continue;
            }
            return true;  // ECONNRESET and friends: closed
        }
        // data (e.g. chargen): discard and keep waiting for the end
    }
}

UniqueFd listen_tcp(std::uint16_t port, const std::string& host) {
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!fill_inet(host, port, ss, len)) return {};
    UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return {};
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return {};
    if (::listen(fd.get(), 16) != 0) return {};
    return fd;
}

std::uint16_t local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

std::uint16_t free_tcp_port() {
    UniqueFd fd = listen_tcp(0);
    return fd ? local_port(fd.get()) : 0;
}

// ---------------------------------------------------------------- commands

CommandResult run(const std::vector<std::string>& argv, Millis timeout,
                  const std::map<std::string, std::string>& env) {
    CommandResult result;
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2"));
    UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2"));
    UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);

    ExecPlan plan(argv, build_env(env));
    pid_t pid = spawn(plan, {-1, out_w.get(), err_w.get(), std::nullopt});
    out_w.reset();
    err_w.reset();

    auto deadline = Clock::now() + timeout;
    bool killed = false;
    char buf[65536];
    while (out_r || err_r) {
        pollfd fds[2];
        int n = 0;
        if (out_r) fds[n++] = {out_r.get(), POLLIN, 0};
        if (err_r) fds[n++] = {err_r.get(), POLLIN, 0};
        int r = ::poll(fds, static_cast<nfds_t>(n), std::max(1, remaining_ms(deadline)));
        if (r < 0 && errno == EINTR) continue;
        if (Clock::now() >= deadline && !killed) {
            ::kill(pid, SIGKILL);
            killed = true;
            deadline = Clock::now() + 5s;  // the pipes close once it is gone
            continue;
        }
        if (killed && Clock::now() >= deadline) break;  // a grandchild holds the pipes
        for (int i = 0; i < n; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
            bool is_out = out_r && fds[i].fd == out_r.get();
            if (got <= 0) {
                (is_out ? out_r : err_r).reset();
            } else {
                (is_out ? result.out : result.err).append(buf, static_cast<std::size_t>(got));
            }
        }
    }
    auto st = reap_within(pid, killed ? 5s : std::max(Millis(1000), Millis(remaining_ms(deadline))));
    if (!st) {
        ::kill(pid, SIGKILL);
        st = reap_within(pid, 5s);
    }
    result.exit_code = st.value_or(-1);
    return result;
}

CommandResult forkctl(const Daemon& daemon, const std::vector<std::string>& args, Millis timeout) {
    std::vector<std::string> argv = {FORKCTL_BINARY, "-s", daemon.control_socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, timeout);
}

std::optional<nlohmann::json> status_json(const Daemon& daemon, std::string* why) {
    auto r = forkctl(daemon, {"--json", "status"});
    if (r.exit_code != 0) {
        if (why) *why = "forkctl --json status exited " + std::to_string(r.exit_code) + ": " + r.err;
        return std::nullopt;
    }
    try {
        return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
        if (why) *why = std::string("forkctl --json status printed no JSON (") + e.what() + "): " + r.out;
        return std::nullopt;
    }
}

DaemonOptions config(std::vector<std::string> lines) {
    DaemonOptions o;
    o.config_lines.insert(o.config_lines.end(), lines.begin(), lines.end());
    return o;
}

} // namespace forkd::test
