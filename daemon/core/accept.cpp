// SPDX-License-Identifier: MIT
#include "daemon/core/accept.hpp"

#include <fcntl.h>

#include <cerrno>

namespace forkd {

AcceptErrno classify_accept_errno(int error) {
    switch (error) {
    case EINTR: return AcceptErrno::retry;
    case EAGAIN: return AcceptErrno::drained;
    // accept(2): the connection's own errors, and the network errors the kernel passes on for a
    // pending connection, are to be treated like EAGAIN by taking the next one. EPERM: a
    // firewall rule refused this client.
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENETUNREACH:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENONET:
        return AcceptErrno::skip;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        return AcceptErrno::exhausted;
    default: return AcceptErrno::fatal;
    }
}

AcceptAttempt accept_connection(int listener, ConnectionMode mode) {
    const int flags = SOCK_CLOEXEC | (mode == ConnectionMode::nonblocking ? SOCK_NONBLOCK : 0);
    AcceptAttempt attempt;
    AcceptedConnection& c = attempt.connection;
    c.peer_len = sizeof c.peer;
    c.fd.reset(::accept4(listener, reinterpret_cast<sockaddr*>(&c.peer), &c.peer_len, flags));
    if (!c.fd) attempt.error = errno;
    return attempt;
}

// Recursion instead of a container: the probes close as it unwinds, and the exec accept path,
// which asks before every connection, allocates nothing for it.
bool descriptors_free(int any_fd, int count) {
    if (count <= 0) return true;
    const UniqueFd probe(::fcntl(any_fd, F_DUPFD_CLOEXEC, 0));
    return probe && descriptors_free(any_fd, count - 1);
}

} // namespace forkd
