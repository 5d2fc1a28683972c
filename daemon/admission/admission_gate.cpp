// SPDX-License-Identifier: MIT
#include "daemon/admission/admission_gate.hpp"

namespace forkd {

AdmissionGate::AdmissionGate(std::span<SourceRates::Entry> source_rate_storage)
    : per_source_(source_rate_storage) {}

AdmissionGate::AdmissionGate(std::span<SourceRates::Entry> source_rate_storage, Rate& table_rate)
    : per_source_(source_rate_storage, table_rate) {}

// A new source-prefix keeps the buckets: the sources it makes are other keys, and the old keys'
// entries are reused as they refill.
void AdmissionGate::set_limits(const RuntimeLimits& limits) {
    if (limits.max_connection_rate != global_.rate()) global_.set_rate(limits.max_connection_rate);
    if (limits.max_per_source_rate != per_source_.rate()) per_source_.set_rate(limits.max_per_source_rate);
    limits_ = limits;
}

bool AdmissionGate::may_accept(std::uint32_t active, std::int64_t now_ns) const {
    return admits_more(limits_, active) && rate_wait_ns(now_ns) == 0;
}

std::int64_t AdmissionGate::rate_wait_ns(std::int64_t now_ns) const {
    if (limits_.overload != OverloadPolicy::wait) return 0;
    return global_.wait_ns(now_ns);
}

AdmissionDecision AdmissionGate::decide(const AdmissionCandidate& c, std::int64_t now_ns) {
    const AdmissionDecision rules = check_rules(c);
    return rules.admitted() ? decide_limits(c, now_ns) : rules;
}

AdmissionDecision AdmissionGate::check_rules(const AdmissionCandidate& c) const {
    if (c.address && !rules_.empty()) {
        const AccessTable::Verdict verdict = rules_.check(*c.address);
        if (!verdict.allowed) return {Refusal::denied, verdict.rule};
    }
    return {};
}

AdmissionDecision AdmissionGate::decide_limits(const AdmissionCandidate& c, std::int64_t now_ns) {
    if (const Refusal r = admission_refusal(limits_, c.active, c.active_from_source); r != Refusal::none)
        return {r};
    if (!per_source_.available(c.source, now_ns)) return {Refusal::per_source_rate};
    // overload=wait: may_accept() held accepts until a token was there; a connection accepted
    // regardless (a batch, a lowered rate) is served, as at max-connections.
    if (limits_.overload == OverloadPolicy::reject && !global_.available(now_ns)) return {Refusal::rate};
    per_source_.take(c.source, now_ns);
    global_.take(now_ns);
    return {};
}

} // namespace forkd
