// SPDX-License-Identifier: MIT
#include "daemon/proxy/read_more.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

namespace forkd {

namespace {

// A socket bufferevent keeps its input's end frozen (only its own reads add there): thawed for
// the length of one read, as bufferevent_sock.c does around its own.
class ThawedEnd {
public:
    explicit ThawedEnd(evbuffer* buffer) : buffer_(buffer) { evbuffer_unfreeze(buffer_, 0); }
    ~ThawedEnd() { evbuffer_freeze(buffer_, 0); }
    ThawedEnd(const ThawedEnd&) = delete;
    ThawedEnd& operator=(const ThawedEnd&) = delete;

private:
    evbuffer* buffer_;
};

} // namespace

ReadMore read_more(evbuffer* input, int fd, std::size_t most) {
    ReadMore result;
    if (most == 0) return result;
    ThawedEnd thawed(input);
    evbuffer_iovec space[2];
    const int chunks = evbuffer_reserve_space(input, static_cast<ev_ssize_t>(most), space, 2);
    if (chunks <= 0) return result;
    iovec to[2];
    std::size_t left = most;
    int used = 0;
    for (; used < chunks && left > 0; ++used) {
        to[used].iov_base = space[used].iov_base;
        to[used].iov_len = std::min(space[used].iov_len, left);
        left -= to[used].iov_len;
    }
    ssize_t got;
    do got = ::readv(fd, to, used);
    while (got < 0 && errno == EINTR);
    if (got <= 0) {
        if (got == 0) result.eof = true;
        else if (errno != EAGAIN && errno != EWOULDBLOCK) result.error = errno;
        evbuffer_commit_space(input, space, 0);
        return result;
    }
    // Commit what arrived: the reserved chunks, trimmed to the bytes read.
    std::size_t rest = static_cast<std::size_t>(got);
    int filled = 0;
    for (; filled < used && rest > 0; ++filled) {
        space[filled].iov_len = std::min(to[filled].iov_len, rest);
        rest -= space[filled].iov_len;
    }
    evbuffer_commit_space(input, space, filled);
    result.bytes = static_cast<std::size_t>(got);
    return result;
}

} // namespace forkd
