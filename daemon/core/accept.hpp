// SPDX-License-Identifier: MIT
#pragma once
// The one accept loop of forkd, and its errno policy: the master's listeners (exec'd handlers),
// forkd-spawner's (built-in handlers) and the control socket all take connections through
// accept_batch (nginx's ngx_event_accept, relayd's control_accept). Each caller keeps its own
// reaction to how a batch ended: the master logs and arms a timer, the spawner reports to the
// master, the control server switches its listener off for a while.
#include "common/base/unique_fd.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <utility>

namespace forkd {

// Connections taken from one listener per wake-up: under a flood the loop's other sources (the
// master's requests, reaping, the control socket) get their turn within a few milliseconds.
inline constexpr int accepts_per_wakeup = 16;

// How long a listener rests after the process ran out of descriptors or memory. Its fd stays
// readable, so level-triggered polling would spin; four tries a second cost nothing, and the
// clients waiting in the backlog are served soon after descriptors come back.
inline constexpr std::chrono::milliseconds accept_pause{250};

// What accept4's errno means for the loop, decided here once.
enum class AcceptErrno {
    retry,      // EINTR: the call was interrupted; try again now
    drained,    // EAGAIN: the backlog is empty; wait for the next wake-up
    skip,       // the client's own failure (it hung up, a network error): take the next one
    exhausted,  // out of descriptors or memory: pause this listener (accept_pause)
    fatal,      // anything else: report it and wait for the next wake-up
};
AcceptErrno classify_accept_errno(int error);

// A handler's connection becomes its stdin and stdout, which must block; the loop's own
// clients (the control socket's) must not.
enum class ConnectionMode { blocking, nonblocking };

struct AcceptedConnection {
    UniqueFd fd;
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
};

// One accept4 (always SOCK_CLOEXEC). An invalid fd means failure; then error holds errno.
struct AcceptAttempt {
    AcceptedConnection connection;
    int error = 0;
};
AcceptAttempt accept_connection(int listener, ConnectionMode mode);

// Whether `count` more descriptors can be opened now. Tried (dups of `any_fd`, closed at once)
// rather than computed: only the kernel knows which numbers below RLIMIT_NOFILE are free.
bool descriptors_free(int any_fd, int count);

enum class AcceptEnd {
    batch_full,  // accepts_per_wakeup connections taken; more may wait
    held,        // may_accept() said no (no room, not accepting)
    stopped,     // serve() said stop
    drained,     // EAGAIN
    exhausted,   // AcceptErrno::exhausted: the caller pauses the listener
    failed,      // AcceptErrno::fatal
};
struct AcceptOutcome {
    AcceptEnd end = AcceptEnd::batch_full;
    int error = 0;  // errno, for exhausted and failed
};

// Takes up to accepts_per_wakeup connections from LISTENER while may_accept() holds, handing
// each to serve(AcceptedConnection), which returns false to stop the batch. A caller whose
// connection needs descriptors of its own besides the accepted one (a pipe, a dup) says how
// many in `needs_more`: when fewer are free the batch ends `exhausted` (EMFILE) before accepting,
// so the client waits in the backlog instead of being accepted and then dropped.
template <class MayAccept, class Serve>
AcceptOutcome accept_batch(int listener, ConnectionMode mode, MayAccept&& may_accept, Serve&& serve,
                           int needs_more = 0) {
    for (int i = 0; i < accepts_per_wakeup; ++i) {
        if (!may_accept()) return {AcceptEnd::held};
        if (needs_more && !descriptors_free(listener, needs_more + 1))
            return {AcceptEnd::exhausted, EMFILE};
        AcceptAttempt attempt = accept_connection(listener, mode);
        if (attempt.connection.fd) {
            if (!serve(std::move(attempt.connection))) return {AcceptEnd::stopped};
            continue;
        }
        switch (classify_accept_errno(attempt.error)) {
        case AcceptErrno::retry:
        case AcceptErrno::skip: continue;
        case AcceptErrno::drained: return {AcceptEnd::drained};
        case AcceptErrno::exhausted: return {AcceptEnd::exhausted, attempt.error};
        case AcceptErrno::fatal: return {AcceptEnd::failed, attempt.error};
        }
    }
    return {AcceptEnd::batch_full};
}

} // namespace forkd
