// SPDX-License-Identifier: MIT
#pragma once
// proxy-protocol = yes for an acceptor speaking the spawner protocol (forkd-spawner, event
// mode's forkd-worker): the settings the master's configure request carries, the connections
// waiting for their header (proxy_header_waits.hpp, whose fd the owner's loop polls), and what
// a finished wait means: the peer to serve it as, or the refused report's peer and value.
// One place, so both acceptors read the header alike.
#include "common/base/unique_fd.hpp"
#include "daemon/admission/proxy_header_waits.hpp"
#include "daemon/admission/proxy_sources.hpp"
#include "daemon/core/accept.hpp"
#include "daemon/spawner/spawner_protocol.hpp"

#include <sys/socket.h>

#include <cstdint>
#include <memory>

namespace forkd {

class ProxyIntake {
public:
    // The proxy settings of a configure request. Turning proxy-protocol off closes the waiting
    // connections; a listener a reload closed is found gone when its header completes.
    void configure(const spawner::Request& request);

    // Whether a connection accepted on a listener (TCP or not) must send a header first.
    bool expects_header(bool tcp_listener) const { return proxy_protocol_ && waits_ && tcp_listener; }

    // The waits' fd (-1 without proxy-protocol), their number, and ms to the next deadline.
    int fd() const { return waits_ ? waits_->fd() : -1; }
    std::size_t waiting() const { return waits_ ? waits_->size() : 0; }
    int timeout_ms(std::int64_t now_ms) const { return waits_ ? waits_->timeout_ms(now_ms) : -1; }

    // Connection `c` waits for its header, unless proxy-from does not allow its peer: then, as
    // for the oldest pushed out of a full set, over(ProxyWaitOutcome) hears of it now.
    template <class F>
    void wait_for_header(AcceptedConnection c, std::uint32_t tag, std::int64_t now_ms, F&& over) {
        if (!proxy_from_.allows(reinterpret_cast<const sockaddr*>(&c.peer), c.peer_len)) {
            ProxyWaitOutcome refused{std::move(c.fd), c.peer, c.peer_len, tag, false, {},
                                     "peer not allowed by proxy-from"};
            return over(std::move(refused));
        }
        waits_->add(std::move(c.fd), c.peer, c.peer_len, tag, now_ms, std::int64_t(header_timeout_s_) * 1000, over);
    }

    // Every wait over by now_ms (a header complete or wrong, a deadline passed) goes to over().
    template <class F>
    void finish_waits(std::int64_t now_ms, F&& over) {
        if (waits_) waits_->process(now_ms, over);
    }

private:
    bool proxy_protocol_ = false;
    std::uint32_t header_timeout_s_ = 0;
    ProxySources proxy_from_;
    std::unique_ptr<ProxyHeaderWaits> waits_;  // from the first configure with proxy-protocol
};

// A completed header's client: the header's source, or the balancer itself for LOCAL (a
// health check). `length` receives its length.
const sockaddr_storage& proxied_peer(const ProxyWaitOutcome& outcome, socklen_t& length);

// A refused wait's report: the balancer as its peer, the reason's index as its value.
spawner::Peer proxy_refusal_peer(const ProxyWaitOutcome& outcome);
int proxy_refusal_value(const ProxyWaitOutcome& outcome);

} // namespace forkd
