#include "daemon/spawner.hpp"

#include "daemon/builtin_handlers.hpp"
#include "daemon/child_setup.hpp"
#include "daemon/not_inherited.hpp"
#include "daemon/pid_table.hpp"
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
#include <span>

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

// A handler's name for PR_SET_NAME, copied onto the forking process's stack: a child reads its
// parent's stack pages without a fault, whereas the string constant's page is not mapped in a
// new child until it faults it in (once per handler).
struct ProcessName {
    char text[16] = {};
};

[[noreturn]] void run_handler_child(const Request& request, const ProcessName& name, int connection,
                                    Scoreboard& board, pid_t spawner_pid) {
    reset_signal_state();
    prctl(PR_SET_NAME, name.text);
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

// Reports not sent yet (the master's socket was full), oldest first, in storage the caller
// provides. Bounded: a connection has at most one report outstanding, since the master reuses
// its slot only once the report has arrived.
class ReportQueue {
public:
    explicit ReportQueue(std::span<Report> storage) : storage_(storage) {}
    bool push(const Report& report) {
        if (size_ == storage_.size()) return false;
        storage_[size_++] = report;
        return true;
    }
    std::span<const Report> pending() const { return storage_.first(size_); }
    void drop_front(std::size_t n) {
        std::memmove(storage_.data(), storage_.data() + n, (size_ - n) * sizeof(Report));
        size_ -= n;
    }
    bool empty() const { return size_ == 0; }

private:
    std::span<Report> storage_;
    std::size_t size_ = 0;
};

class SpawnerLoop {
public:
    SpawnerLoop(UniqueFd control, Scoreboard& board)
        : control_(std::move(control)), board_(board), self_(getpid()),
          pid_entries_(PidTable::entries_for(board.capacity())), running_(pid_entries_.items()),
          report_storage_(2 * board.capacity() + spawner::max_records),
          pending_(report_storage_.items()) {}

    int run() {
        if (!set_up_signals()) return 1;
        pending_.push(Report{0, self_, spawner::protocol_version, ReportKind::hello, {}});
        for (;;) {
            if (!flush()) break;
            pollfd fds[2] = {{control_.get(), short(POLLIN | (pending_.empty() ? 0 : POLLOUT)), 0},
                             {signals_.get(), POLLIN, 0}};
            if (poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                std::fprintf(stderr, "forkd-spawner: poll: %s\n", std::strerror(errno));
                break;
            }
            if (fds[1].revents && !reap()) break;
            if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (!read_requests()) break;
            }
        }
        kill_all();
        return 0;
    }

private:
    // What the loop writes between two forks. A child inherits none of it (see
    // not_inherited.hpp) and must not touch it: whatever a child needs is copied to the stack
    // before the fork.
    struct Buffers {
        spawner::Datagram datagram;
        spawner::Records<Request> requests;
        spawner::Encoded outgoing;
        struct Outcome {
            std::uint64_t id;
            pid_t pid;
            int error;
        };
        std::array<Outcome, spawner::max_records> outcomes;
    };

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
        spawner::Datagram& datagram = buffers_->datagram;
        switch (spawner::receive_datagram(control_.get(), datagram)) {
        case spawner::ReceiveStatus::would_block: return true;
        case spawner::ReceiveStatus::closed: return false;
        case spawner::ReceiveStatus::error:
            std::fprintf(stderr, "forkd-spawner: recvmsg: %s\n", std::strerror(errno));
            return false;
        case spawner::ReceiveStatus::ok: break;
        }
        if (!spawner::decode_requests(datagram.view(), buffers_->requests)) {
            std::fprintf(stderr, "forkd-spawner: malformed request from the master\n");
            return false;
        }
        return spawn_batch();
    }

    // Forks the batch's handlers first and does its bookkeeping after: between two forks this
    // process writes only memory no child shares (shared memory and not-inherited buffers).
    // Signals come last, so that one for a handler of this very batch finds it.
    bool spawn_batch() {
        spawner::Datagram& datagram = buffers_->datagram;
        auto& outcomes = buffers_->outcomes;
        std::size_t count = 0, next_fd = 0;
        for (const Request& request : buffers_->requests) {
            if (request.kind != RequestKind::spawn) continue;
            // No fd: the kernel dropped it (MSG_CTRUNC), which only happens when we are out of fds.
            const int connection = next_fd < datagram.fd_count ? datagram.fds[next_fd++].get() : -1;
            const pid_t pid = fork_handler(request, connection);
            outcomes[count++] = {request.id, pid, pid < 0 ? -pid : 0};
            if (connection >= 0) ::close(connection);
        }
        for (std::size_t i = 0; i < next_fd; ++i) datagram.fds[i].release();  // closed above
        for (std::size_t i = 0; i < count; ++i) {
            const auto& o = outcomes[i];
            const bool kept = o.error ? pending_.push(Report{o.id, 0, o.error, ReportKind::spawn_failed, {}})
                                      : running_.insert({o.pid, o.id});
            if (!kept) return overflowed();
        }
        for (const Request& request : buffers_->requests)
            if (request.kind == RequestKind::signal) forward_signal(request);
        return true;
    }

    // The handler's pid, or -errno.
    pid_t fork_handler(const Request& shared_request, int connection) {
        if (connection < 0) return -EMFILE;
        if (shared_request.slot >= board_.capacity()) return -EINVAL;
        const Request request = shared_request;  // on the stack: the child cannot see buffers_
        ProcessName name;
        std::strncpy(name.text, process_name(request.handler), sizeof name.text - 1);
        // _Fork: no atfork handlers and no re-initialisation of glibc's locks in the child,
        // which this single-threaded process does not need, and whose page writes would each
        // cost the child a copy-on-write fault.
        const pid_t pid = _Fork();
        if (pid == 0) run_handler_child(request, name, connection, board_, self_);
        if (pid < 0) return -errno;
        board_.set_pid(request.slot, pid);  // shared memory: no copy-on-write
        return pid;
    }

    // The slot's pid (set_pid at the fork), if that handler is not reaped yet, so its pid cannot
    // have been reused, and still serves that connection (the master may have reused the slot
    // since it sent this).
    void forward_signal(const Request& request) {
        if (request.slot >= board_.capacity()) return;
        const pid_t pid = board_.pid(request.slot);
        const PidTable::Entry* running = running_.find(pid);
        if (running && running->id == request.id) ::kill(pid, request.signo);
    }

    bool reap() {
        signalfd_siginfo info;
        while (read(signals_.get(), &info, sizeof info) == sizeof info) {
        }
        // SIGCHLD coalesces: reap until nothing is left.
        for (;;) {
            int status = 0;
            const pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0) break;
            const auto handler = running_.take(pid);
            if (!handler) continue;
            if (!pending_.push(Report{handler->id, pid, status, ReportKind::exited, {}})) return overflowed();
        }
        return true;
    }

    // Cannot happen with a master that reuses a slot only after its report: say so and stop.
    // The master counts this spawner's connections as lost and starts another.
    bool overflowed() {
        std::fprintf(stderr, "forkd-spawner: more handlers or reports than the scoreboard has slots\n");
        return false;
    }

    // Sends what is pending, max_records per datagram. False once the master is gone.
    bool flush() {
        std::size_t sent = 0;
        const auto pending = pending_.pending();
        while (sent < pending.size()) {
            const std::size_t n = std::min(spawner::max_records, pending.size() - sent);
            spawner::encode_reports(pending.subspan(sent, n), buffers_->outgoing);
            const int rc = spawner::send_datagram(control_.get(), buffers_->outgoing.view());
            if (rc == -EAGAIN) break;
            if (rc < 0) {
                if (rc != -EPIPE && rc != -ECONNRESET)
                    std::fprintf(stderr, "forkd-spawner: sendmsg: %s\n", std::strerror(-rc));
                return false;
            }
            sent += n;
        }
        pending_.drop_front(sent);
        return true;
    }

    // The master is gone or asked us to go: nothing may outlive it.
    void kill_all() {
        running_.for_each([](const PidTable::Entry& e) { ::kill(e.pid, SIGKILL); });
        running_.for_each([](const PidTable::Entry& e) { waitpid(e.pid, nullptr, 0); });
    }

    UniqueFd control_;
    UniqueFd signals_;
    Scoreboard& board_;
    const pid_t self_;
    NotInherited<Buffers> buffers_;
    NotInherited<PidTable::Entry> pid_entries_;
    PidTable running_;  // running handlers → connection id
    NotInherited<Report> report_storage_;
    ReportQueue pending_;
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
