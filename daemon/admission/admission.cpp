// SPDX-License-Identifier: MIT
#include "daemon/admission/admission.hpp"

namespace forkd {

std::string_view refusal_name(Refusal reason) {
    switch (reason) {
    case Refusal::none: return "none";
    case Refusal::limit: return "limit";
    case Refusal::per_source: return "per_source";
    case Refusal::fork_failed: return "fork_failed";
    case Refusal::proxy: return "proxy";
    }
    return "unknown";
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

bool Admission::should_accept(std::uint32_t active) const { return admits_more(limits_, active); }

Refusal Admission::decide(std::uint32_t active, const std::string& source) const {
    return admission_refusal(limits_, active, active_from(source));
}

void Admission::started(const std::string& source) { ++per_source_[source]; }

void Admission::ended(const std::string& source) {
    const auto it = per_source_.find(source);
    if (it == per_source_.end()) return;
    // Erase at zero so that the map holds only sources with live connections.
    if (--it->second == 0) per_source_.erase(it);
}

std::uint32_t Admission::active_from(const std::string& source) const {
    const auto it = per_source_.find(source);
    return it == per_source_.end() ? 0 : it->second;
}

} // namespace forkd
