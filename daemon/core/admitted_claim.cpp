// SPDX-License-Identifier: MIT
#include "daemon/core/admitted_claim.hpp"

namespace forkd {

AdmittedClaim claim_admitted(Scoreboard& board, AdmissionGate& gate, AdmissionCandidate candidate,
                             std::uint64_t id, std::string_view peer, std::int64_t now_ns) {
    AdmittedClaim out;
    const Scoreboard::Lock lock(board);
    candidate.active = board.active();
    candidate.active_from_source = board.from_source(lock, candidate.source);
    out.decision = gate.decide_limits(candidate, now_ns);
    if (!out.decision.admitted()) return out;
    out.slot = board.claim(lock, id, peer, candidate.source);
    if (!out.slot) out.decision = {Refusal::limit};
    return out;
}

void set_shared_limits(Scoreboard& board, AdmissionGate& gate, const RuntimeLimits& limits) {
    const Scoreboard::Lock lock(board);
    gate.set_limits(limits);
}

} // namespace forkd
