// SPDX-License-Identifier: MIT
#pragma once
// Connections waiting for their PROXY protocol header (proxy-protocol = yes), held by the
// process that accepted them (forkd-spawner for built-in handlers, the master for exec'd ones)
// without ever blocking it: their sockets sit in an epoll set of their own, edge-triggered
// because the header is only peeked at (MSG_PEEK) until it is whole, and the set's one fd is
// what the owner's loop polls. Every connection has the same timeout, so deadlines fall in the
// order connections arrive: a list in that order gives the next one. Bounded: at most `capacity` wait at once;
// one more pushes the oldest out (refused), so a flood of silent clients cannot lock out the
// clients that talk. libc only, no allocation after construction.
#include "common/base/unique_fd.hpp"
#include "daemon/admission/proxy_header.hpp"

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace forkd {

// A connection whose wait is over: `header` is done (its bytes already read away, whatever
// followed them still in the socket) or it is refused with `reason`.
struct ProxyWaitOutcome {
    UniqueFd fd;
    sockaddr_storage peer{};  // as accept(2) gave it: the balancer
    socklen_t peer_len = 0;
    std::uint32_t tag = 0;    // the owner's name for the listener
    bool ok = false;
    ProxyHeader header;       // ok: the parsed header
    const char* reason = "";  // !ok: why it is refused (one line, static)
};

class ProxyHeaderWaits {
public:
    // Throws std::system_error if epoll_create1 fails.
    explicit ProxyHeaderWaits(std::size_t capacity);
    ~ProxyHeaderWaits();
    ProxyHeaderWaits(const ProxyHeaderWaits&) = delete;
    ProxyHeaderWaits& operator=(const ProxyHeaderWaits&) = delete;

    // Readable when some waiting connection has news (level-triggered on the set itself).
    int fd() const { return epoll_.get(); }
    std::size_t size() const { return count_; }
    std::size_t capacity() const { return slots_.size(); }

    // A new connection, due at now_ms + timeout_ms. Its header may already be there: the next
    // process() looks. When every slot is taken, the oldest is handed to `pushed_out` first.
    template <class F>
    void add(UniqueFd fd, const sockaddr_storage& peer, socklen_t peer_len, std::uint32_t tag,
             std::int64_t now_ms, std::int64_t timeout_ms, F&& pushed_out) {
        if (count_ == slots_.size()) {
            ProxyWaitOutcome oldest = take(oldest_, "too many connections waiting for a PROXY header");
            pushed_out(std::move(oldest));
        }
        insert(std::move(fd), peer, peer_len, tag, now_ms + timeout_ms);
    }

    // What epoll reports and what timed out by now_ms: each connection whose wait ended goes to
    // done(ProxyWaitOutcome), at most `budget` of them per call (the loop's other work comes
    // first again; the set stays readable while more is due).
    template <class F>
    void process(std::int64_t now_ms, F&& done, int budget = 64) {
        for (ProxyWaitOutcome& outcome : collect(now_ms, budget)) done(std::move(outcome));
    }

    // Milliseconds from now_ms to the next deadline (0 if past), -1 when nothing waits.
    int timeout_ms(std::int64_t now_ms) const;

    // Every waiting connection closes (a reload that turns proxy-protocol off, a stop).
    void clear();

private:
    struct Slot {
        UniqueFd fd;
        sockaddr_storage peer{};
        socklen_t peer_len = 0;
        std::uint32_t tag = 0;
        std::uint32_t generation = 0;  // tells a stale epoll event from this connection's
        std::int64_t deadline_ms = 0;
        std::uint32_t older = none, newer = none;  // the arrival-order list
        bool used = false;
    };
    static constexpr std::uint32_t none = UINT32_MAX;

    void insert(UniqueFd fd, const sockaddr_storage& peer, socklen_t peer_len, std::uint32_t tag,
                std::int64_t deadline_ms);
    ProxyWaitOutcome take(std::uint32_t slot, const char* reason);
    void unlink(std::uint32_t slot);
    // Peeks at slot's connection: true once its wait is over (outcome filled in).
    bool look(std::uint32_t slot, ProxyWaitOutcome& outcome);
    std::vector<ProxyWaitOutcome>& collect(std::int64_t now_ms, int budget);

    UniqueFd epoll_;
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_;  // free slot numbers
    std::uint32_t oldest_ = none, newest_ = none;
    std::size_t count_ = 0;
    std::vector<ProxyWaitOutcome> finished_;  // collect's result, reused
};

} // namespace forkd
