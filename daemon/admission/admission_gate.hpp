// SPDX-License-Identifier: MIT
#pragma once
// The whole admission decision of one accepting process (forkd-spawner for built-in handlers,
// the master for exec'd ones, event-mode workers), in one place so that every mode admits alike:
//   1. allow/deny rules (TCP peers only)                       -> denied
//   2. max-connections with overload=reject                    -> limit
//   3. max-per-source (sources grouped by source-prefix)       -> per_source
//   4. max-per-source-rate                                     -> per_source_rate
//   5. max-connection-rate with overload=reject                -> rate
// Tokens are taken only from a connection that is admitted, so refused clients do not spend the
// rate of the others. With overload=wait the global rate never refuses: the acceptor asks
// may_accept() before each accept and, while it says no, leaves clients in the backlog for
// rate_wait_ns(). Pure: no syscalls, the caller passes the time (CLOCK_MONOTONIC ns).
// Steps 3 and 4 are exact across processes when the count and the buckets are the scoreboard's
// shared ones: the acceptor checks the rules first, then decides the limits and claims the slot
// in one critical section of the scoreboard (claim_admitted, daemon/core/admitted_claim.hpp).
#include "common/base/runtime_limits.hpp"
#include "daemon/admission/access_rules.hpp"
#include "daemon/admission/admission.hpp"
#include "daemon/admission/source_counts.hpp"
#include "daemon/admission/source_rates.hpp"
#include "daemon/admission/token_bucket.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace forkd {

// One accepted connection, as the gate needs it.
struct AdmissionCandidate {
    const IpAddress* address = nullptr;  // nullptr: a UNIX peer (the rules do not apply)
    SourceKey source;                    // source_of(): grouped by source-prefix, uid on UNIX
    std::uint32_t active = 0;            // connections of this acceptor's pool now
    std::uint32_t active_from_source = 0;
};

struct AdmissionDecision {
    Refusal refusal = Refusal::none;
    std::size_t rule = AccessTable::no_rule;  // denied: the deciding rule (no_rule: none matched)
    bool admitted() const { return refusal == Refusal::none; }
};

class AdmissionGate {
public:
    // Storage for the per-source rate buckets (SourceRates::entries_for), caller-owned.
    explicit AdmissionGate(std::span<SourceRates::Entry> source_rate_storage);
    // Buckets shared with other processes (the scoreboard's), filled under `table_rate`: every
    // use of them, set_limits and decide_limits included, is under the scoreboard's lock.
    AdmissionGate(std::span<SourceRates::Entry> source_rate_storage, Rate& table_rate);

    // A rate that changes starts with a full bucket; one that stays keeps its state.
    void set_limits(const RuntimeLimits& limits);
    const RuntimeLimits& limits() const { return limits_; }
    // The table must outlive its use here (the caller owns its storage).
    void set_rules(const AccessTable& rules) { rules_ = rules; }
    const AccessTable& rules() const { return rules_; }

    // The source a peer counts as, under source-prefix.
    SourceKey source_of(const IpAddress& address) const { return SourceKey::of_ip(address, limits_.source_prefix); }

    // Whether to accept at all now: max-connections with overload=wait, and the global rate with
    // overload=wait, hold accepts (clients wait in the backlog).
    bool may_accept(std::uint32_t active, std::int64_t now_ns) const;
    // With overload=wait and the global rate spent: how long until a token is there (else 0).
    std::int64_t rate_wait_ns(std::int64_t now_ns) const;

    // The decision for an accepted connection; an admitted one takes its rate tokens.
    AdmissionDecision decide(const AdmissionCandidate& candidate, std::int64_t now_ns);
    // decide() in two parts: the allow/deny rules (step 1), touching nothing shared, and the
    // limits and rates (steps 2 to 5) for a candidate the rules let through.
    AdmissionDecision check_rules(const AdmissionCandidate& candidate) const;
    AdmissionDecision decide_limits(const AdmissionCandidate& candidate, std::int64_t now_ns);

private:
    RuntimeLimits limits_;
    AccessTable rules_;
    TokenBucket global_;
    SourceRates per_source_;
};

} // namespace forkd
