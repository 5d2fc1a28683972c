// SPDX-License-Identifier: MIT
#include "daemon/spawner/peer_admission.hpp"

#include "daemon/core/admitted_claim.hpp"

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

PeerAdmission check_peer(const AdmissionGate& gate, int fd, const sockaddr_storage& address, socklen_t length) {
    PeerAdmission admission;
    admission.peer = describe_peer(fd, address, length);
    const spawner::Peer& peer = admission.peer;
    if (peer.has_cred) {
        admission.source = SourceKey::of_uid(peer.cred_uid);
        return admission;
    }
    const auto ip = IpAddress::of_sockaddr(reinterpret_cast<const sockaddr*>(peer.address), peer.address_len);
    if (!ip) return admission;
    admission.source = gate.source_of(*ip);
    admission.decision = gate.check_rules({&*ip, admission.source});
    return admission;
}

void claim_for_peer(PeerAdmission& admission, Scoreboard& board, AdmissionGate& gate, const PolicyMapping& policy,
                    int fd, std::uint64_t id, std::string_view peer_text, std::int64_t now_ns) {
    const AdmittedClaim claim = claim_admitted(board, gate, {nullptr, admission.source}, id, peer_text, now_ns);
    admission.decision = claim.decision;
    admission.slot = claim.slot;
    if (!admission.decision.admitted()) policy.send_busy_message(fd, admission.decision.refusal);
}

} // namespace forkd
