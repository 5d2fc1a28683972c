#include "daemon/spawner.hpp"

#include "daemon/builtin_handlers.hpp"
#include "daemon/child_setup.hpp"
#include "daemon/scoreboard.hpp"
#include "daemon/spawner_protocol.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <unordered_map>
#include <vector>

namespace forkd {
namespace {

using spawner::Report;
using spawner::ReportKind;
using spawner::Request;
using spawner::RequestKind;

// What ps shows for a handler: "forkd-echo" and so on.
const char* process_name(HandlerKind kind) {
    switch (kind) {
    case HandlerKind::echo: return "forkd-echo";
    case HandlerKind::discard: return "forkd-discard";
    case HandlerKind::daytime: return "forkd-daytime";
    case HandlerKind::chargen: return "forkd-chargen";
    case HandlerKind::exec: break;
    }
    return "forkd-handler";
}

[[noreturn]] void run_handler_child(const Request& request, int connection, Scoreboard& board,
                                    pid_t spawner_pid) {
    reset_signal_state();
    prctl(PR_SET_NAME, process_name(request.handler));
    if (!die_with_parent(spawner_pid) || !connection_to_stdio(connection)) _exit(1);
    const BuiltinContext context{0, &board, request.slot, request.idle_timeout_s};
    const int code = run_builtin_handler(request.handler, context);
    // The client sees the close first; the counter drops before the process is gone, and the
    // master reconciles when the spawner reports the exit either way.
    close(0);
    close(1);
    board.release_from_child(request.slot);
    _exit(code);
}

class SpawnerLoop {
public:
    SpawnerLoop(UniqueFd control, Scoreboard& board)
        : control_(std::move(control)), board_(board), self_(getpid()) {
        by_pid_.reserve(board.capacity());
        pending_.reserve(board.capacity());
    }

    int run() {
        if (!set_up_signals()) return 1;
        pending_.push_back(Report{0, self_, spawner::protocol_version, ReportKind::hello, {}});
        for (;;) {
            if (!flush()) break;
            pollfd fds[2] = {{control_.get(), short(POLLIN | (pending_.empty() ? 0 : POLLOUT)), 0},
                             {signals_.get(), POLLIN, 0}};
            if (poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                std::fprintf(stderr, "forkd-spawner: poll: %s\n", std::strerror(errno));
                break;
            }
            if (fds[1].revents) reap();
            if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (!read_requests()) break;
            }
        }
        kill_all();
        return 0;
    }

private:
    // The spawner lives and dies with the master: the terminal's SIGINT, a hangup or a stray
    // SIGTERM must not take the built-in handlers down behind the master's back. Blocked rather
    // than ignored: dispositions stay default, so a child only has to clear its mask.
    bool set_up_signals() {
        sigset_t blocked;
        sigemptyset(&blocked);
        for (int signo : {SIGINT, SIGHUP, SIGTERM, SIGPIPE, SIGCHLD}) sigaddset(&blocked, signo);
        sigprocmask(SIG_BLOCK, &blocked, nullptr);
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        signals_.reset(signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
        if (!signals_) {
            std::fprintf(stderr, "forkd-spawner: signalfd: %s\n", std::strerror(errno));
            return false;
        }
        record_signal_dispositions();
        return true;
    }

    // One datagram (at most max_records spawns) per turn of the loop: under a flood the master
    // keeps the socket full, and reading it dry would starve reaping and reporting, leaving
    // thousands of zombies and slots the master cannot reuse. False once the master has gone
    // (its end closed) or spoke nonsense.
    bool read_requests() {
        spawner::Datagram& datagram = datagram_;
        switch (spawner::receive_datagram(control_.get(), datagram)) {
        case spawner::ReceiveStatus::would_block: return true;
        case spawner::ReceiveStatus::closed: return false;
        case spawner::ReceiveStatus::error:
            std::fprintf(stderr, "forkd-spawner: recvmsg: %s\n", std::strerror(errno));
            return false;
        case spawner::ReceiveStatus::ok: break;
        }
        if (!spawner::decode_requests(datagram.view(), requests_)) {
            std::fprintf(stderr, "forkd-spawner: malformed request from the master\n");
            return false;
        }
        spawn_batch(datagram);
        return true;
    }

    // After a fork every page this process writes costs it a copy-on-write fault (and a page
    // copy while the child still shares it), so between two forks it writes as little as it
    // can: the batch's bookkeeping is kept on the stack and applied after the last fork.
    void spawn_batch(spawner::Datagram& datagram) {
        struct Outcome {
            std::uint64_t id;
            pid_t pid;
            int error;
        };
        std::array<Outcome, spawner::max_records> outcomes;
        std::size_t count = 0, next_fd = 0;
        for (const Request& request : requests_) {
            if (request.kind == RequestKind::signal) {
                forward_signal(request);
                continue;
            }
            // No fd: the kernel dropped it (MSG_CTRUNC), which only happens when we are out of fds.
            const int connection = next_fd < datagram.fd_count ? datagram.fds[next_fd++].get() : -1;
            Outcome& outcome = outcomes[count++];
            outcome = {request.id, fork_handler(request, connection), 0};
            if (outcome.pid < 0) outcome.error = -outcome.pid;
            if (connection >= 0) ::close(connection);
        }
        for (std::size_t i = 0; i < next_fd; ++i) datagram.fds[i].release();  // closed above
        for (std::size_t i = 0; i < count; ++i) {
            const Outcome& o = outcomes[i];
            if (o.error) pending_.push_back(Report{o.id, 0, o.error, ReportKind::spawn_failed, {}});
            else by_pid_.emplace(o.pid, o.id);
        }
    }

    // The handler's pid, or -errno.
    pid_t fork_handler(const Request& request, int connection) {
        if (connection < 0) return -EMFILE;
        if (request.slot >= board_.capacity()) return -EINVAL;
        // _Fork: no atfork handlers and no re-initialisation of glibc's locks in the child,
        // which this single-threaded process does not need, and whose page writes would each
        // cost the child a copy-on-write fault.
        const pid_t pid = _Fork();
        if (pid == 0) run_handler_child(request, connection, board_, self_);
        if (pid < 0) return -errno;
        board_.set_pid(request.slot, pid);  // shared memory: no copy-on-write
        return pid;
    }

    // Only to a handler not yet reaped: its pid cannot have been reused. Rare (timeouts,
    // forkctl kill, stop), so a scan is fine.
    void forward_signal(const Request& request) {
        for (const auto& [pid, id] : by_pid_) {
            if (id != request.id) continue;
            ::kill(pid, request.signo);
            return;
        }
    }

    void reap() {
        signalfd_siginfo info;
        while (read(signals_.get(), &info, sizeof info) == sizeof info) {
        }
        // SIGCHLD coalesces: reap until nothing is left.
        for (;;) {
            int status = 0;
            const pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0) break;
            auto it = by_pid_.find(pid);
            if (it == by_pid_.end()) continue;
            pending_.push_back(Report{it->second, pid, status, ReportKind::exited, {}});
            by_pid_.erase(it);
        }
    }

    // Sends what is pending, max_records per datagram. False once the master is gone.
    bool flush() {
        std::size_t sent = 0;
        while (sent < pending_.size()) {
            const std::size_t n = std::min(spawner::max_records, pending_.size() - sent);
            const auto datagram =
                spawner::encode_reports(std::span<const Report>(pending_).subspan(sent, n));
            const int rc = spawner::send_datagram(control_.get(), datagram.view());
            if (rc == -EAGAIN) break;
            if (rc < 0) {
                if (rc != -EPIPE && rc != -ECONNRESET)
                    std::fprintf(stderr, "forkd-spawner: sendmsg: %s\n", std::strerror(-rc));
                return false;
            }
            sent += n;
        }
        pending_.erase(pending_.begin(), pending_.begin() + std::ptrdiff_t(sent));
        return true;
    }

    // The master is gone or asked us to go: nothing may outlive it.
    void kill_all() {
        for (const auto& [pid, id] : by_pid_) ::kill(pid, SIGKILL);
        for (const auto& [pid, id] : by_pid_) waitpid(pid, nullptr, 0);
    }

    UniqueFd control_;
    UniqueFd signals_;
    Scoreboard& board_;
    const pid_t self_;
    std::unordered_map<pid_t, std::uint64_t> by_pid_;  // running handlers → connection id
    std::vector<Report> pending_;
    spawner::Datagram datagram_;
    spawner::Records<Request> requests_;
};

} // namespace

int run_spawner(UniqueFd control, UniqueFd scoreboard_memfd) {
    const int flags = fcntl(control.get(), F_GETFL);
    if (flags < 0 || fcntl(control.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
        std::fprintf(stderr, "forkd-spawner: control socket: %s\n", std::strerror(errno));
        return 1;
    }
    try {
        Scoreboard board(std::move(scoreboard_memfd));
        return SpawnerLoop(std::move(control), board).run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "forkd-spawner: %s\n", e.what());
        return 1;
    }
}

} // namespace forkd
