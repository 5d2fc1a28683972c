// SPDX-License-Identifier: MIT
#pragma once
// One larger read from a socket into a bufferevent's input buffer, in space reserved in that
// evbuffer (evbuffer_reserve_space / evbuffer_commit_space: no copy, no buffer of our own).
//
// Why: libevent 2.1's socket bufferevent reads at most 4 KiB per readiness callback
// (EVBUFFER_MAX_READ in buffer.c; 2.2 adds evbuffer_set_max_read, Debian 12 ships 2.1.12), so
// a bulk transfer costs one trip through epoll per 4 KiB. Topping the input up once per
// callback takes the rest of what the socket holds in one readv.
#include <event2/buffer.h>

#include <cstddef>
#include <sys/types.h>

namespace forkd {

// What one read of libevent 2.1's socket bufferevent takes at most. It reads no more than
// FIONREAD says waits, so an input shorter than this after its read means the socket had no more:
// a top-up then would only cost a readv that fails with EAGAIN.
constexpr std::size_t bufferevent_single_read = 4096;

struct ReadMore {
    std::size_t bytes = 0;  // committed to the buffer (its callbacks have run)
    int error = 0;          // errno of a failed read, EAGAIN excepted; 0 otherwise
    bool eof = false;       // the peer has shut its side: the next read sees it as well
};

// Reads at most `most` bytes from `fd` into `input`, a socket bufferevent's input buffer (whose
// end it leaves frozen, as the bufferevent keeps it). Nothing is read when `most` is 0.
ReadMore read_more(evbuffer* input, int fd, std::size_t most);

} // namespace forkd
