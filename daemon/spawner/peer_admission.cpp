// SPDX-License-Identifier: MIT
#include "daemon/spawner/peer_admission.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

namespace forkd {

int PeerAdmission::refusal_value() const {
    if (decision.refusal != Refusal::denied) return 0;
    return decision.rule == AccessTable::no_rule ? -1 : int(decision.rule);
}

spawner::Peer describe_peer(int fd, const sockaddr_storage& address, socklen_t length) {
    spawner::Peer peer;
    if (address.ss_family == AF_INET || address.ss_family == AF_INET6) {
        peer.address_len = std::min<std::uint32_t>(length, sizeof peer.address);
        std::memcpy(peer.address, &address, peer.address_len);
        return peer;
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        peer.has_cred = 1;
        peer.cred_pid = cred.pid;
        peer.cred_uid = cred.uid;
    }
    return peer;
}

PeerAdmission admit_peer(AdmissionGate& gate, const PolicyMapping& policy, const SourceCounts& sources,
                         std::uint32_t active, int fd, const sockaddr_storage& address, socklen_t length,
                         std::int64_t now_ns) {
    PeerAdmission admission;
    admission.peer = describe_peer(fd, address, length);
    const spawner::Peer& peer = admission.peer;
    std::optional<IpAddress> ip;
    if (peer.has_cred) {
        admission.source = SourceKey::of_uid(peer.cred_uid);
    } else {
        ip = IpAddress::of_sockaddr(reinterpret_cast<const sockaddr*>(peer.address), peer.address_len);
        if (ip) admission.source = gate.source_of(*ip);
    }
    admission.decision =
        gate.decide({ip ? &*ip : nullptr, admission.source, active, sources.count(admission.source)}, now_ns);
    // A denied client is closed here and now; one refused by a limit hears why first.
    if (!admission.decision.admitted()) policy.send_busy_message(fd, admission.decision.refusal);
    return admission;
}

} // namespace forkd
