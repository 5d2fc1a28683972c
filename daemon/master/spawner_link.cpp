// SPDX-License-Identifier: MIT
#include "daemon/master/spawner_link.hpp"

#include "common/base/error.hpp"
#include "common/base/reap.hpp"
#include "common/log.hpp"
#include "daemon/core/child_setup.hpp"
#include "daemon/core/scoreboard.hpp"
#include "daemon/event_loop/event_sources.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#ifndef FORKD_SPAWNER_PATH
#error "FORKD_SPAWNER_PATH must name the installed forkd-spawner"
#endif
#ifndef FORKD_WORKER_PATH
#error "FORKD_WORKER_PATH must name the installed forkd-worker"
#endif

namespace forkd {
namespace {

constexpr int hello_timeout_ms = 5000;

// Sources of the dup2 onto fds 3 and 4 must lie above both, or one dup2 could clobber the
// other's source.
UniqueFd above_targets(int fd) { return UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 10)); }

std::string errno_text(const std::string& what, int error) {
    return Error{error, what}.message();
}

} // namespace

SpawnerLink::SpawnerLink(sd_event* event, const Scoreboard& board, ReportHandler on_report, std::string path)
    : event_(event), board_(board), on_report_(std::move(on_report)), path_(std::move(path)) {}

SpawnerLink::~SpawnerLink() {
    if (pid_ <= 0) return;
    const pid_t pid = pid_;
    drop();
    ::kill(pid, SIGKILL);
    reap(pid);
}

// NAME next to the running forkd (a build tree), else the installed one.
static std::string sibling_or(const char* name, const char* installed) {
    char self[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        std::string sibling(self, std::size_t(n));
        sibling.erase(sibling.find_last_of('/') + 1);
        sibling += name;
        if (access(sibling.c_str(), X_OK) == 0) return sibling;
    }
    return installed;
}

std::string SpawnerLink::binary_path() { return sibling_or("forkd-spawner", FORKD_SPAWNER_PATH); }

std::string SpawnerLink::worker_binary_path() { return sibling_or("forkd-worker", FORKD_WORKER_PATH); }

// posix_spawn is glibc's vfork-style clone: cheap, and it reports a failed exec as an error.
std::string SpawnerLink::launch() {
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) < 0)
        return errno_text("socketpair", errno);
    UniqueFd ours(ends[0]), theirs(ends[1]);
    UniqueFd theirs_high = above_targets(theirs.get()), board_high = above_targets(board_.memfd());
    if (!theirs_high || !board_high) return errno_text("fcntl F_DUPFD", errno);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, theirs_high.get(), spawner::control_fd);
    posix_spawn_file_actions_adddup2(&actions, board_high.get(), spawner::scoreboard_fd);
    posix_spawn_file_actions_addclosefrom_np(&actions, spawner::scoreboard_fd + 1);
    const CleanSignalsSpawnAttr attr;

    const std::string master = std::to_string(getpid());
    const std::string name = path_.substr(path_.find_last_of('/') + 1);
    char* argv[] = {const_cast<char*>(name.c_str()), const_cast<char*>(master.c_str()), nullptr};
    char* envp[] = {nullptr};
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, path_.c_str(), &actions, attr.get(), argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return errno_text("cannot start " + path_, rc);

    if (fcntl(ours.get(), F_SETFL, O_NONBLOCK) < 0) {
        const int error = errno;
        ::kill(pid, SIGKILL);
        reap(pid);
        return errno_text("fcntl O_NONBLOCK", error);
    }
    auto source = event_loop::add_io(event_, ours.get(), EPOLLIN, "spawner-socket",
                                     [this](std::uint32_t events) { socket_ready(events); });
    if (!source) {
        ::kill(pid, SIGKILL);
        reap(pid);
        return errno_text("sd_event_add_io", source.error().code);
    }
    source_ = std::move(*source);
    socket_ = std::move(ours);
    pid_ = pid;
    greeted_ = false;
    watching_output_ = false;
    return "";
}

void SpawnerLink::start_and_wait() {
    if (auto error = launch(); !error.empty()) throw std::runtime_error(error);
    // Blocking is fine here: the loop does not run yet.
    pollfd p{socket_.get(), POLLIN, 0};
    const int n = poll(&p, 1, hello_timeout_ms);
    if (n > 0) read_reports();
    if (greeted_) return;
    const pid_t pid = pid_;
    drop();
    ::kill(pid, SIGKILL);
    const int status = reap(pid);
    std::string why = n == 0 ? "no hello within 5 s"
                      : WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                          : "did not say hello";
    throw std::runtime_error(path_ + ": " + why);
}

std::string SpawnerLink::restart() { return launch(); }

void SpawnerLink::adopt(pid_t pid, UniqueFd socket, std::uint64_t generation) {
    auto source = event_loop::add_io(event_, socket.get(), EPOLLIN, "spawner-socket",
                                     [this](std::uint32_t events) { socket_ready(events); });
    if (!source) throw std::runtime_error(errno_text("sd_event_add_io", source.error().code));
    source_ = std::move(*source);
    socket_ = std::move(socket);
    pid_ = pid;
    greeted_ = true;
    watching_output_ = false;
    generation_ = applied_generation_ = generation;
}

void SpawnerLink::socket_ready(std::uint32_t events) {
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_reports();
    if ((events & EPOLLOUT) && socket_) flush();
}

void SpawnerLink::read_reports() {
    while (socket_) {
        switch (spawner::receive_datagram(socket_.get(), *inbox_)) {
        case spawner::ReceiveStatus::would_block: return;
        case spawner::ReceiveStatus::closed:
        case spawner::ReceiveStatus::error:
            // It is exiting; its SIGCHLD brings exited(). Until then nothing more can come.
            source_.reset();
            return;
        case spawner::ReceiveStatus::ok:
            if (!handle_datagram(*inbox_)) return;
            break;
        }
    }
}

bool SpawnerLink::handle_datagram(const spawner::Datagram& datagram) {
    spawner::Records<spawner::Report>& reports = *decoded_;
    if (!spawner::decode_reports(datagram.view(), reports)) {
        // Most likely a forkd-spawner of another version (an upgrade, then a restart of it alone).
        log::err("spawner-protocol-error", {{"pid", long(pid_)}, {"path", path_},
                                            {"error", "malformed report; killing it"}});
        ::kill(pid_, SIGKILL);
        source_.reset();
        return false;
    }
    // Hello comes first and alone in practice; dropped in place all the same.
    std::size_t kept = 0;
    for (std::size_t i = 0; i < reports.count; ++i) {
        const spawner::Report& report = reports.items[i];
        if (report.kind == spawner::ReportKind::hello) greeted_ = true;
        if (report.kind == spawner::ReportKind::configured) applied_generation_ = report.id;
        if (report.kind != spawner::ReportKind::hello) reports.items[kept++] = report;
    }
    if (kept) on_report_(std::span<const spawner::Report>(reports.items.data(), kept));
    return true;
}

void SpawnerLink::configure(spawner::Request settings, std::span<const ListenerRef> listeners, int policy_fd) {
    settings.kind = spawner::RequestKind::configure;
    settings.generation = 0;
    settings.listeners = 0;
    std::vector<std::uint32_t> tags;
    for (const ListenerRef& listener : listeners) tags.push_back(listener.tag);
    if (last_settings_ && tags == last_tags_ &&
        std::memcmp(&settings, &*last_settings_, sizeof settings) == 0)
        return;
    last_settings_ = settings;
    last_tags_ = std::move(tags);
    if (listeners.size() > spawner::max_listeners)
        log::err("listeners-unserved", {{"listeners", listeners.size()}, {"served", spawner::max_listeners}});

    settings.generation = ++generation_;
    configuration_.assign(1, settings);
    configuration_fds_.clear();
    for (const ListenerRef& listener : listeners.first(std::min(listeners.size(), spawner::max_listeners))) {
        // A dup, in case it waits for room: the master may close its listener meanwhile.
        UniqueFd copy(fcntl(listener.fd, F_DUPFD_CLOEXEC, 3));
        if (!copy) {
            log::err("spawner-listener-lost", {{"address", std::string(listener.address)},
                                               {"error", std::strerror(errno)}});
            continue;
        }
        spawner::Request record;
        record.kind = spawner::RequestKind::listener;
        record.tag = listener.tag;
        configuration_.push_back(record);
        configuration_fds_.push_back(std::move(copy));
    }
    configuration_.front().listeners = std::uint16_t(configuration_fds_.size());
    configuration_.front().has_policy = 0;
    if (settings.has_policy && policy_fd >= 0) {
        if (UniqueFd copy(fcntl(policy_fd, F_DUPFD_CLOEXEC, 3)); copy) {
            spawner::Request record;
            record.kind = spawner::RequestKind::policy;
            configuration_.push_back(record);
            configuration_fds_.push_back(std::move(copy));
            configuration_.front().has_policy = 1;
        } else {
            log::err("spawner-policy-lost", {{"error", std::strerror(errno)}});
        }
    }
    flush();
}

void SpawnerLink::signal(std::uint64_t id, std::uint32_t slot, int signo) {
    spawner::Request request;
    request.kind = spawner::RequestKind::signal;
    request.id = id;
    request.slot = slot;
    request.signo = signo;
    signals_.push_back(request);
    flush();
}

// The configuration first (one datagram, its listeners riding along), then signals, up to
// max_records per datagram. What does not fit in the socket waits for EPOLLOUT.
void SpawnerLink::flush() {
    if (!socket_) return;
    if (!configuration_.empty()) {
        int fds[spawner::max_records];
        std::size_t fd_count = 0;
        for (const UniqueFd& fd : configuration_fds_) fds[fd_count++] = fd.get();
        const auto datagram = spawner::encode_requests(configuration_);
        const int rc = spawner::send_datagram(socket_.get(), datagram.view(), {fds, fd_count});
        if (rc == 0) {
            configuration_.clear();
            configuration_fds_.clear();  // the kernel holds them now
        } else if (rc != -EAGAIN) {
            // The spawner is going away: its SIGCHLD brings exited(), then a restart.
            log::debug("spawner-send-failed", {{"error", std::strerror(-rc)}});
        }
    }
    std::size_t sent = 0;
    while (configuration_.empty() && sent < signals_.size()) {
        const std::size_t n = std::min(spawner::max_records, signals_.size() - sent);
        const auto datagram =
            spawner::encode_requests(std::span<const spawner::Request>(signals_).subspan(sent, n));
        const int rc = spawner::send_datagram(socket_.get(), datagram.view());
        if (rc < 0) {
            if (rc != -EAGAIN) log::debug("spawner-send-failed", {{"error", std::strerror(-rc)}});
            break;
        }
        sent += n;
    }
    signals_.erase(signals_.begin(), signals_.begin() + std::ptrdiff_t(sent));
    watch_output(!configuration_.empty() || !signals_.empty());
}

void SpawnerLink::watch_output(bool want) {
    if (!source_ || want == watching_output_) return;
    sd_event_source_set_io_events(source_.get(), want ? EPOLLIN | EPOLLOUT : EPOLLIN);
    watching_output_ = want;
}

void SpawnerLink::exited() {
    read_reports();
    drop();
}

void SpawnerLink::drop() {
    source_.reset();
    socket_.reset();
    configuration_.clear();
    configuration_fds_.clear();
    signals_.clear();
    applied_generation_ = generation_ = 0;
    last_settings_.reset();
    last_tags_.clear();
    pid_ = 0;
    greeted_ = false;
    watching_output_ = false;
}

} // namespace forkd
