// SPDX-License-Identifier: MIT
#pragma once
// How an acceptor speaking the spawner protocol (forkd-spawner, event mode's forkd-worker)
// admits a connection it accepted: the peer as the reports carry it, its source under
// source-prefix (its uid on a UNIX socket), the gate's decision (admission_gate.hpp) with the
// slot it allows claimed in the same scoreboard section (daemon/core/admitted_claim.hpp), and
// busy-message sent to a client refused by a limit or a rate. One place, so both admit alike.
#include "daemon/admission/admission_gate.hpp"
#include "daemon/admission/policy_mapping.hpp"
#include "daemon/admission/source_counts.hpp"
#include "daemon/core/scoreboard.hpp"
#include "daemon/spawner/spawner_protocol.hpp"

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace forkd {

struct PeerAdmission {
    spawner::Peer peer;
    SourceKey source;
    AdmissionDecision decision;
    std::optional<std::uint32_t> slot;  // claimed once admitted (claim_for_peer)
    // The refused report's value: for denied, the deciding rule's index (-1: none matched).
    int refusal_value() const;
};

// The peer of connection `fd` accepted from `address`: its address, or its credentials on UNIX.
spawner::Peer describe_peer(int fd, const sockaddr_storage& address, socklen_t length);

// Step one for connection `fd`: its peer, its source and the allow/deny rules' verdict. Nothing
// shared is touched, so a denied client (closed by the caller) costs no lock.
PeerAdmission check_peer(const AdmissionGate& gate, int fd, const sockaddr_storage& address, socklen_t length);

// Step two, for one the rules let through: the limits and rates decided and the slot claimed,
// named `peer_text`, in one section of the scoreboard (claim_admitted). A refused client has been
// sent busy-message (if it applies) when this returns; an admitted one took its tokens.
void claim_for_peer(PeerAdmission& admission, Scoreboard& board, AdmissionGate& gate, const PolicyMapping& policy,
                    int fd, std::uint64_t id, std::string_view peer_text, std::int64_t now_ns);

} // namespace forkd
