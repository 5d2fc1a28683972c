// SPDX-License-Identifier: MIT
#pragma once
// Admission's limits and the slot they allow, decided in one critical section of the scoreboard,
// so that what several accepting processes share is exact: max-connections with overload=reject
// reads `active` and max-per-source the source's count under the lock that the claim takes them
// in, and, for a gate over the scoreboard's buckets, max-per-source-rate's token is checked and
// taken there too. The allow/deny rules come first and outside (AdmissionGate::check_rules):
// a flood of denied clients never takes the lock.
#include "daemon/admission/admission_gate.hpp"
#include "daemon/core/scoreboard.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace forkd {

struct AdmittedClaim {
    AdmissionDecision decision;
    std::optional<std::uint32_t> slot;  // set exactly when admitted
};

// For a candidate the rules let through (its `active` and `active_from_source` are read here).
// A decision that admits when no slot is free is refused as `limit`, as a failed claim always was.
AdmittedClaim claim_admitted(Scoreboard& board, AdmissionGate& gate, AdmissionCandidate candidate,
                             std::uint64_t id, std::string_view peer, std::int64_t now_ns);

// gate.set_limits for a gate over the scoreboard's buckets (a new rate resets them).
void set_shared_limits(Scoreboard& board, AdmissionGate& gate, const RuntimeLimits& limits);

} // namespace forkd
