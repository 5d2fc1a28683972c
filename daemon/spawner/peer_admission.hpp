// SPDX-License-Identifier: MIT
#pragma once
// How an acceptor speaking the spawner protocol (forkd-spawner, event mode's forkd-worker)
// admits a connection it accepted: the peer as the reports carry it, its source under
// source-prefix (its uid on a UNIX socket), the gate's decision (admission_gate.hpp), and
// busy-message sent to a client refused by a limit or a rate. One place, so both admit alike.
#include "daemon/admission/admission_gate.hpp"
#include "daemon/admission/policy_mapping.hpp"
#include "daemon/admission/source_counts.hpp"
#include "daemon/spawner/spawner_protocol.hpp"

#include <sys/socket.h>

#include <cstdint>

namespace forkd {

struct PeerAdmission {
    spawner::Peer peer;
    SourceKey source;
    AdmissionDecision decision;
    // The refused report's value: for denied, the deciding rule's index (-1: none matched).
    int refusal_value() const;
};

// The peer of connection `fd` accepted from `address`: its address, or its credentials on UNIX.
spawner::Peer describe_peer(int fd, const sockaddr_storage& address, socklen_t length);

// The decision for connection `fd`; `active`: the pool's connections now. A refused client has
// been sent busy-message (if it applies) when this returns; an admitted one took its tokens.
PeerAdmission admit_peer(AdmissionGate& gate, const PolicyMapping& policy, const SourceCounts& sources,
                         std::uint32_t active, int fd, const sockaddr_storage& address, socklen_t length,
                         std::int64_t now_ns);

} // namespace forkd
