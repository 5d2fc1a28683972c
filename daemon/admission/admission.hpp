// SPDX-License-Identifier: MIT
#pragma once
// Pure admission policy: may a new connection from SOURCE start now? No syscalls, no clocks.
#include "common/base/runtime_limits.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace forkd {

// Why a connection was not served. The names are status.refused's keys. proxy: no valid PROXY
// protocol header in time, or one from a peer proxy-from does not allow.
enum class Refusal { none, limit, per_source, fork_failed, denied, rate, per_source_rate, proxy };
std::string_view refusal_name(Refusal reason);
// Every reason but none, in status.refused's order.
inline constexpr Refusal refusal_reasons[] = {Refusal::limit,  Refusal::per_source, Refusal::fork_failed,
                                              Refusal::denied, Refusal::rate,       Refusal::per_source_rate,
                                              Refusal::proxy};
// Whether a client refused so is sent busy-message: a limit or a rate, not a deny rule.
bool busy_message_applies(Refusal reason);

// The rules themselves, for whoever admits (AdmissionGate, and the master for whether its
// listeners are polled; the per-source count is the scoreboard's, one for every acceptor).
// Whether the listeners should be polled at all (overload=wait holds accepts at the limit).
bool admits_more(const RuntimeLimits& limits, std::uint32_t active);
// For an accepted connection: none, limit (overload=reject at the limit) or per_source.
Refusal admission_refusal(const RuntimeLimits& limits, std::uint32_t active,
                          std::uint32_t active_from_source);

} // namespace forkd
