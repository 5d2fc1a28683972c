// SPDX-License-Identifier: MIT
// forkd_loadgen: bounded load and latency measurement for forkd's benchmarks.
//
// Modes (each of C worker threads loops until --duration passes or --count operations are done):
//   echo     connect, write the payload, shutdown(SHUT_WR), read until EOF, check the bytes, close.
//            Half-closing first lets the server see EOF and close first, so the server's side
//            holds TIME_WAIT and the client's ephemeral ports are not used up (see README.md).
//   request  UNIX or TCP: connect, write --request plus "\n", read one reply line (containing
//            --expect), close: the control socket's one-request-per-connection protocol.
//   command  run the program after "--" (stdout/stderr to /dev/null) and wait; success = exit 0.
//   refused  connect, send nothing, read until the server closes (EOF or a reset; a busy
//            message is read and ignored), close: a client that admission control turns away.
// Latency is one operation's wall time (connect to close, or spawn to reap).
// Targets are restricted to loopback addresses and UNIX sockets.
#include "common/base/unique_fd.hpp"

#include <boost/program_options.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace forkd {
namespace {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

enum class Mode { echo, request, command, refused };

// SIGINT/SIGTERM end the run early: workers finish the operation in hand and the summary prints.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);
extern "C" void on_stop_signal(int) { g_interrupted.store(true); }

struct Options {
    std::string host = "127.0.0.1";
    unsigned port = 0;
    std::string unix_path;
    unsigned concurrency = 1;
    double duration_s = 5.0;
    double warmup_s = 0.0;
    unsigned long count = 0;        // 0: bounded by duration only
    std::size_t payload = 64;
    double timeout_s = 5.0;         // per operation
    Mode mode = Mode::echo;
    std::string request = R"({"version":1,"command":"status"})";
    std::string expect;             // request mode: the reply must contain this
    std::vector<std::string> command;
    std::string label;
    bool json = false;
};

struct Target {
    sockaddr_storage addr{};
    socklen_t len = 0;
    std::string text;
};

// Why one operation failed; counted per kind so that port exhaustion is told apart from refusals.
enum class Outcome { ok, socket, addr_unavailable, refused, connect_other, timeout, reset, io, short_reply, mismatch, spawn, exit_status };

const char* outcome_name(Outcome outcome) {
    switch (outcome) {
    case Outcome::ok: return "ok";
    case Outcome::socket: return "socket";
    case Outcome::addr_unavailable: return "addr_unavailable";
    case Outcome::refused: return "refused";
    case Outcome::connect_other: return "connect_other";
    case Outcome::timeout: return "timeout";
    case Outcome::reset: return "reset";
    case Outcome::io: return "io";
    case Outcome::short_reply: return "short_reply";
    case Outcome::mismatch: return "mismatch";
    case Outcome::spawn: return "spawn";
    case Outcome::exit_status: return "exit_status";
    }
    return "unknown";
}

Mode parse_mode(const std::string& name) {
    if (name == "echo") return Mode::echo;
    if (name == "request") return Mode::request;
    if (name == "command") return Mode::command;
    if (name == "refused") return Mode::refused;
    throw std::invalid_argument("--mode: expected echo, request, command or refused, got '" + name + "'");
}

const char* mode_name(Mode mode) {
    switch (mode) {
    case Mode::echo: return "echo";
    case Mode::request: return "request";
    case Mode::command: return "command";
    case Mode::refused: return "refused";
    }
    return "?";
}

// Loopback only: 127.0.0.0/8 or ::1 (also as v4-mapped). Anything else is refused.
Target resolve_target(const Options& options) {
    Target target;
    if (!options.unix_path.empty()) {
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        if (options.unix_path.size() >= sizeof un.sun_path)
            throw std::invalid_argument("--unix: path too long: " + options.unix_path);
        std::memcpy(un.sun_path, options.unix_path.data(), options.unix_path.size());
        std::memcpy(&target.addr, &un, sizeof un);
        target.len = sizeof un;
        target.text = "unix:" + options.unix_path;
        return target;
    }
    if (options.port == 0 || options.port > 65535)
        throw std::invalid_argument("--port: expected 1-65535");
    sockaddr_in in4{};
    sockaddr_in6 in6{};
    if (inet_pton(AF_INET, options.host.c_str(), &in4.sin_addr) == 1) {
        if ((ntohl(in4.sin_addr.s_addr) >> 24) != 127)
            throw std::invalid_argument("--host " + options.host + ": only loopback addresses are allowed");
        in4.sin_family = AF_INET;
        in4.sin_port = htons(static_cast<std::uint16_t>(options.port));
        std::memcpy(&target.addr, &in4, sizeof in4);
        target.len = sizeof in4;
        target.text = options.host + ":" + std::to_string(options.port);
    } else if (inet_pton(AF_INET6, options.host.c_str(), &in6.sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&in6.sin6_addr))
            throw std::invalid_argument("--host " + options.host + ": only loopback addresses are allowed");
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(static_cast<std::uint16_t>(options.port));
        std::memcpy(&target.addr, &in6, sizeof in6);
        target.len = sizeof in6;
        target.text = "[" + options.host + "]:" + std::to_string(options.port);
    } else {
        throw std::invalid_argument("--host " + options.host + ": not a literal IPv4/IPv6 address");
    }
    return target;
}

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

// Waits for `events` on fd until the operation's deadline; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
    pollfd pfd{fd, events, 0};
    for (;;) {
        int n = ::poll(&pfd, 1, remaining_ms(deadline));
        if (n > 0) return true;
        if (n == 0) return false;
        if (errno != EINTR) return false;
    }
}

Outcome classify_connect_errno(int err) {
    switch (err) {
    case EADDRNOTAVAIL: return Outcome::addr_unavailable;
    case ECONNREFUSED: return Outcome::refused;
    case ETIMEDOUT: return Outcome::timeout;
    default: return Outcome::connect_other;
    }
}

Outcome classify_io_errno(int err) {
    return (err == ECONNRESET || err == EPIPE) ? Outcome::reset : Outcome::io;
}

// A non-blocking connected socket, or the reason it could not be had.
Outcome open_connection(const Target& target, Clock::time_point deadline, UniqueFd& out) {
    UniqueFd fd(::socket(target.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return Outcome::socket;
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&target.addr), target.len) != 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) return classify_connect_errno(errno);
        if (errno == EAGAIN && target.addr.ss_family == AF_UNIX) return Outcome::refused;  // backlog full
        if (!wait_for(fd.get(), POLLOUT, deadline)) return Outcome::timeout;
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return classify_connect_errno(err);
    }
    out = std::move(fd);
    return Outcome::ok;
}

// Writes `out` (half-closing afterwards when asked) while reading into `in` until EOF, or until
// `stop_at_newline` sees a line end. Interleaved so that payloads larger than the socket buffers
// cannot deadlock against an echoing server.
Outcome exchange(int fd, const std::string& out, bool half_close, bool stop_at_newline,
                 std::string& in, Clock::time_point deadline) {
    std::size_t sent = 0;
    bool write_done = out.empty();
    if (write_done && half_close) ::shutdown(fd, SHUT_WR);
    char buf[16384];
    for (;;) {
        short events = POLLIN;
        if (!write_done) events |= POLLOUT;
        if (!wait_for(fd, events, deadline)) return Outcome::timeout;
        if (!write_done) {
            ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<std::size_t>(n);
                if (sent == out.size()) {
                    write_done = true;
                    if (half_close) ::shutdown(fd, SHUT_WR);
                }
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return classify_io_errno(errno);
            }
        }
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            in.append(buf, static_cast<std::size_t>(n));
            if (stop_at_newline && in.find('\n') != std::string::npos) return Outcome::ok;
        } else if (n == 0) {
            return write_done ? Outcome::ok : Outcome::short_reply;
        } else if (errno != EAGAIN && errno != EINTR) {
            return classify_io_errno(errno);
        }
    }
}

class Operation {
public:
    Operation(const Options& options, const Target& target) : options_(options), target_(target) {
        payload_.resize(options.payload);
        for (std::size_t i = 0; i < payload_.size(); ++i)
            payload_[i] = static_cast<char>('a' + i % 26);
        if (options.payload > 0) payload_.back() = '\n';
        request_ = options.request + "\n";
        for (const auto& word : options.command) argv_.push_back(const_cast<char*>(word.c_str()));
        argv_.push_back(nullptr);
    }

    Outcome run() {
        switch (options_.mode) {
        case Mode::echo: return echo();
        case Mode::request: return request();
        case Mode::command: return command();
        case Mode::refused: return refused();
        }
        return Outcome::io;
    }

private:
    Clock::time_point deadline() const {
        return Clock::now() + std::chrono::microseconds(static_cast<long>(options_.timeout_s * 1e6));
    }

    Outcome echo() {
        auto until = deadline();
        UniqueFd fd;
        if (auto outcome = open_connection(target_, until, fd); outcome != Outcome::ok) return outcome;
        reply_.clear();
        if (auto outcome = exchange(fd.get(), payload_, true, false, reply_, until); outcome != Outcome::ok)
            return outcome;
        if (reply_.size() < payload_.size()) return Outcome::short_reply;
        return reply_ == payload_ ? Outcome::ok : Outcome::mismatch;
    }

    Outcome request() {
        auto until = deadline();
        UniqueFd fd;
        if (auto outcome = open_connection(target_, until, fd); outcome != Outcome::ok) return outcome;
        reply_.clear();
        if (auto outcome = exchange(fd.get(), request_, false, true, reply_, until); outcome != Outcome::ok)
            return outcome;
        if (reply_.find('\n') == std::string::npos) return Outcome::short_reply;
        return reply_.find(options_.expect) != std::string::npos ? Outcome::ok : Outcome::mismatch;
    }

    Outcome refused() {
        auto until = deadline();
        UniqueFd fd;
        if (auto outcome = open_connection(target_, until, fd); outcome != Outcome::ok) return outcome;
        char buf[4096];
        for (;;) {
            if (!wait_for(fd.get(), POLLIN, until)) return Outcome::timeout;
            const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno == ECONNRESET)) return Outcome::ok;
            if (n < 0 && errno != EAGAIN && errno != EINTR) return classify_io_errno(errno);
        }
    }

    Outcome command() {
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        pid_t pid = -1;
        int err = ::posix_spawn(&pid, argv_[0], &actions, nullptr, argv_.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (err != 0) return Outcome::spawn;
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? Outcome::ok : Outcome::exit_status;
    }

    const Options& options_;
    const Target& target_;
    std::string payload_, request_, reply_;
    std::vector<char*> argv_;
};

struct WorkerResult {
    std::vector<std::uint32_t> latencies_us;   // successful operations after the warm-up
    std::map<Outcome, unsigned long> counts;   // every operation after the warm-up, by outcome
};

struct Run {
    const Options& options;
    const Target& target;
    Clock::time_point measure_from, stop_at;
    std::atomic<unsigned long> budget;         // remaining operations when --count is given

    bool take_one() {
        if (options.count == 0) return true;
        unsigned long left = budget.load();
        while (left > 0)
            if (budget.compare_exchange_weak(left, left - 1)) return true;
        return false;
    }
};

void worker(Run& run, WorkerResult& result) {
    Operation operation(run.options, run.target);
    while (!g_interrupted.load() && Clock::now() < run.stop_at && run.take_one()) {
        auto start = Clock::now();
        Outcome outcome = operation.run();
        auto end = Clock::now();
        if (start < run.measure_from) continue;
        ++result.counts[outcome];
        if (outcome == Outcome::ok)
            result.latencies_us.push_back(static_cast<std::uint32_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()));
        else if (outcome == Outcome::refused || outcome == Outcome::addr_unavailable || outcome == Outcome::socket)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));  // no hot spin on a fast failure
    }
}

// Nearest-rank percentile of sorted values, in milliseconds.
double percentile_ms(const std::vector<std::uint32_t>& sorted, double p) {
    if (sorted.empty()) return 0.0;
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return sorted[rank - 1] / 1000.0;
}

// Sockets in TIME_WAIT (state 06) on `port`, from /proc/net/tcp{,6}: held by the server's side
// (local port = the target's) or by the client's (remote port = the target's, local = ephemeral).
struct TimeWait { long server = -1, client = -1; };

TimeWait time_wait_count(unsigned port) {
    TimeWait n{0, 0};
    for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream file(path);
        std::string line;
        std::getline(file, line);
        while (std::getline(file, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            if (state != "06") continue;
            auto port_of = [](const std::string& a) { return std::stoul(a.substr(a.rfind(':') + 1), nullptr, 16); };
            if (port_of(local) == port) ++n.server;
            else if (port_of(remote) == port) ++n.client;
        }
    }
    return n;
}

struct Summary {
    unsigned long ok = 0, errors = 0;
    double elapsed_s = 0, rate = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
    std::map<Outcome, unsigned long> counts;
};

Summary summarise(std::vector<WorkerResult>& results, double elapsed_s) {
    Summary summary;
    std::vector<std::uint32_t> all;
    for (auto& result : results) {
        all.insert(all.end(), result.latencies_us.begin(), result.latencies_us.end());
        for (auto [outcome, n] : result.counts) summary.counts[outcome] += n;
    }
    std::sort(all.begin(), all.end());
    summary.ok = all.size();
    for (auto [outcome, n] : summary.counts)
        if (outcome != Outcome::ok) summary.errors += n;
    summary.elapsed_s = elapsed_s;
    summary.rate = elapsed_s > 0 ? static_cast<double>(summary.ok) / elapsed_s : 0;
    summary.p50 = percentile_ms(all, 50);
    summary.p90 = percentile_ms(all, 90);
    summary.p99 = percentile_ms(all, 99);
    summary.max = all.empty() ? 0 : all.back() / 1000.0;
    double sum = 0;
    for (auto v : all) sum += v;
    summary.mean = all.empty() ? 0 : sum / static_cast<double>(all.size()) / 1000.0;
    return summary;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) { out += ' '; continue; }
        out += c;
    }
    return out + "\"";
}

void print_summary(const Options& options, const Target& target, const Summary& s, TimeWait time_wait) {
    char buf[256];
    if (options.json) {
        std::ostringstream out;
        out << "{\"label\":" << json_string(options.label) << ",\"target\":" << json_string(target.text)
            << ",\"mode\":\"" << mode_name(options.mode) << "\",\"concurrency\":" << options.concurrency
            << ",\"payload\":" << options.payload;
        std::snprintf(buf, sizeof buf,
                      ",\"elapsed_s\":%.3f,\"ok\":%lu,\"errors\":%lu,\"per_s\":%.1f,"
                      "\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f",
                      s.elapsed_s, s.ok, s.errors, s.rate, s.mean, s.p50, s.p90, s.p99, s.max);
        out << buf << ",\"time_wait_server\":" << time_wait.server << ",\"time_wait_client\":" << time_wait.client
            << ",\"outcomes\":{";
        bool first = true;
        for (auto [outcome, n] : s.counts) {
            out << (first ? "" : ",") << "\"" << outcome_name(outcome) << "\":" << n;
            first = false;
        }
        out << "}}";
        std::cout << out.str() << std::endl;
        return;
    }
    std::cout << (options.label.empty() ? "" : options.label + ": ") << mode_name(options.mode) << " "
              << (options.mode == Mode::command ? options.command.front() : target.text)
              << "  concurrency " << options.concurrency << "\n";
    std::snprintf(buf, sizeof buf, "  %lu ok in %.2f s = %.1f/s, %lu errors\n", s.ok, s.elapsed_s, s.rate, s.errors);
    std::cout << buf;
    std::snprintf(buf, sizeof buf, "  latency ms: mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
                  s.mean, s.p50, s.p90, s.p99, s.max);
    std::cout << buf;
    if (s.errors > 0) {
        std::cout << "  errors:";
        for (auto [outcome, n] : s.counts)
            if (outcome != Outcome::ok) std::cout << " " << outcome_name(outcome) << "=" << n;
        std::cout << "\n";
    }
    if (time_wait.server >= 0)
        std::cout << "  TIME_WAIT at the end: " << time_wait.server << " held by the server side, "
                  << time_wait.client << " by the client side\n";
}

Options parse_options(int argc, char** argv) {
    Options o;
    std::string mode = "echo";
    po::options_description visible("forkd_loadgen: bounded load on a loopback/UNIX server\nOptions");
    visible.add_options()
        ("help,h", "this help")
        ("host", po::value(&o.host)->default_value(o.host), "loopback address (127.0.0.0/8 or ::1)")
        ("port,p", po::value(&o.port), "TCP port")
        ("unix", po::value(&o.unix_path), "UNIX socket path instead of TCP")
        ("mode,m", po::value(&mode)->default_value(mode), "echo | request | command | refused")
        ("concurrency,c", po::value(&o.concurrency)->default_value(o.concurrency), "worker threads, 1-1024")
        ("duration,d", po::value(&o.duration_s)->default_value(o.duration_s), "seconds to run, at most 600")
        ("warmup,w", po::value(&o.warmup_s)->default_value(o.warmup_s), "seconds at the start not counted")
        ("count,n", po::value(&o.count)->default_value(o.count), "stop after N operations (0: duration only)")
        ("payload,b", po::value(&o.payload)->default_value(o.payload), "echo: bytes per connection, at most 16 MiB")
        ("timeout,t", po::value(&o.timeout_s)->default_value(o.timeout_s), "seconds one operation may take")
        ("request", po::value(&o.request)->default_value(o.request), "request mode: the line to send")
        ("expect", po::value(&o.expect), "request mode: text the reply must contain")
        ("label", po::value(&o.label), "name carried into the output")
        ("json", po::bool_switch(&o.json), "one JSON object on stdout");
    po::options_description hidden;
    hidden.add_options()("command", po::value(&o.command)->multitoken());
    po::options_description all;
    all.add(visible).add(hidden);
    po::positional_options_description positional;
    positional.add("command", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
        std::cout << visible << "\ncommand mode: forkd_loadgen --mode command [OPTIONS] -- PROGRAM ARGS...\n";
        std::exit(0);
    }
    po::notify(vm);
    o.mode = parse_mode(mode);
    if (o.concurrency < 1 || o.concurrency > 1024) throw std::invalid_argument("--concurrency: expected 1-1024");
    if (!(o.duration_s > 0 && o.duration_s <= 600)) throw std::invalid_argument("--duration: expected (0, 600]");
    if (!(o.warmup_s >= 0 && o.warmup_s < o.duration_s)) throw std::invalid_argument("--warmup: expected [0, duration)");
    if (!(o.timeout_s > 0 && o.timeout_s <= 60)) throw std::invalid_argument("--timeout: expected (0, 60]");
    if (o.payload > (16u << 20)) throw std::invalid_argument("--payload: at most 16 MiB");
    if (o.count > 10'000'000) throw std::invalid_argument("--count: at most 10000000");
    if (o.mode == Mode::command) {
        if (o.command.empty() || o.command.front().empty() || o.command.front()[0] != '/')
            throw std::invalid_argument("--mode command: give an absolute program path after --");
    } else if (!o.command.empty()) {
        throw std::invalid_argument("unexpected argument '" + o.command.front() + "'");
    } else if (o.unix_path.empty() && o.port == 0) {
        throw std::invalid_argument("give --port (with --host) or --unix");
    }
    return o;
}

int run_main(int argc, char** argv) {
    Options options = parse_options(argc, argv);
    Target target;
    if (options.mode != Mode::command) target = resolve_target(options);

    struct sigaction action{};
    action.sa_handler = on_stop_signal;
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);

    auto start = Clock::now();
    auto seconds = [](double s) { return std::chrono::microseconds(static_cast<long>(s * 1e6)); };
    Run run{options, target, start + seconds(options.warmup_s), start + seconds(options.duration_s), {options.count}};
    std::vector<WorkerResult> results(options.concurrency);
    {
        std::vector<std::jthread> threads;
        for (unsigned i = 0; i < options.concurrency; ++i)
            threads.emplace_back([&run, &result = results[i]] { worker(run, result); });
    }
    // Operations started before the deadline finish after it; dividing by the full span keeps
    // the rate honest (the tail is at most one operation per worker).
    double elapsed = std::chrono::duration<double>(Clock::now() - run.measure_from).count();
    Summary summary = summarise(results, elapsed);
    TimeWait time_wait;
    if (options.mode == Mode::echo && options.unix_path.empty()) time_wait = time_wait_count(options.port);
    print_summary(options, target, summary, time_wait);
    return summary.ok > 0 ? 0 : 1;
}

} // namespace
} // namespace forkd

int main(int argc, char** argv) {
    try {
        return forkd::run_main(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "forkd_loadgen: " << e.what() << "\n";
        return 2;
    }
}
