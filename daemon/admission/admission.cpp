// SPDX-License-Identifier: MIT
#include "daemon/admission/admission.hpp"

namespace forkd {

std::string_view refusal_name(Refusal reason) {
    switch (reason) {
    case Refusal::none: return "none";
    case Refusal::limit: return "limit";
    case Refusal::per_source: return "per_source";
    case Refusal::fork_failed: return "fork_failed";
    case Refusal::denied: return "denied";
    case Refusal::rate: return "rate";
    case Refusal::per_source_rate: return "per_source_rate";
    case Refusal::proxy: return "proxy";
    }
    return "unknown";
}

bool busy_message_applies(Refusal reason) {
    return reason == Refusal::limit || reason == Refusal::per_source || reason == Refusal::rate ||
           reason == Refusal::per_source_rate;
}

namespace {

bool at_limit(const RuntimeLimits& limits, std::uint32_t active) {
    return limits.max_connections > 0 && active >= limits.max_connections;
}

} // namespace

bool admits_more(const RuntimeLimits& limits, std::uint32_t active) {
    // With overload=reject the listeners stay polled: the refusal happens after accept.
    return !(limits.overload == OverloadPolicy::wait && at_limit(limits, active));
}

Refusal admission_refusal(const RuntimeLimits& limits, std::uint32_t active,
                          std::uint32_t active_from_source) {
    // overload=wait never refuses here: the acceptor stops accepting at the limit instead, and a
    // connection already accepted (a lowered limit, a batch of accepts) is better served than dropped.
    if (limits.overload == OverloadPolicy::reject && at_limit(limits, active)) return Refusal::limit;
    if (limits.max_per_source > 0 && active_from_source >= limits.max_per_source)
        return Refusal::per_source;
    return Refusal::none;
}

} // namespace forkd
