// SPDX-License-Identifier: MIT
#include "daemon/spawner/proxy_intake.hpp"

#include "daemon/admission/proxy_header.hpp"

#include <algorithm>
#include <cstring>

namespace forkd {
namespace {
// Connections waiting for a PROXY header at once; one more pushes the oldest out.
constexpr std::size_t proxy_waits_capacity = 4096;
} // namespace

void ProxyIntake::configure(const spawner::Request& request) {
    proxy_protocol_ = request.proxy_protocol != 0;
    header_timeout_s_ = request.proxy_header_timeout_s;
    proxy_from_ = {};
    for (std::uint32_t i = 0; i < request.proxy_from_count; ++i) proxy_from_.add(request.proxy_from[i]);
    if (waits_ && !proxy_protocol_) waits_->clear();
    if (proxy_protocol_ && !waits_) waits_ = std::make_unique<ProxyHeaderWaits>(proxy_waits_capacity);
}

const sockaddr_storage& proxied_peer(const ProxyWaitOutcome& outcome, socklen_t& length) {
    if (outcome.header.command == ProxyCommand::local) {
        length = outcome.peer_len;
        return outcome.peer;
    }
    length = outcome.header.address_length;
    return outcome.header.source;
}

spawner::Peer proxy_refusal_peer(const ProxyWaitOutcome& outcome) {
    spawner::Peer peer;
    peer.address_len = std::min<std::uint32_t>(outcome.peer_len, sizeof peer.address);
    std::memcpy(peer.address, &outcome.peer, peer.address_len);
    return peer;
}

int proxy_refusal_value(const ProxyWaitOutcome& outcome) { return int(proxy_reason_index(outcome.reason)); }

} // namespace forkd
