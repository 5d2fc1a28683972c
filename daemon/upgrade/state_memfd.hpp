// SPDX-License-Identifier: MIT
#pragma once
// The state record's carrier: an unnamed memfd (no name anywhere, gone with its last holder)
// that the new image inherits, its number in FORKD_UPGRADE_STATE. And FD_CLOEXEC, cleared on
// exactly the descriptors the record names just before the execve, set again right after it
// (or after a failed execve), so no handler ever inherits one.
#include "common/base/error.hpp"
#include "common/base/unique_fd.hpp"
#include "daemon/upgrade/upgrade_state.hpp"

#include <span>
#include <string>

namespace forkd::upgrade {

constexpr const char* state_environment = "FORKD_UPGRADE_STATE";

// A memfd holding encode_state(state), offset 0, O_CLOEXEC (cleared by the caller at exec time).
Result<UniqueFd> write_state_memfd(const UpgradeState& state);
// Reads and decodes the record in FD (which it closes). Errors name the step.
Result<UpgradeState> read_state_fd(int fd);
// FORKD_UPGRADE_STATE's descriptor, the variable removed from the environment; -1 without it.
int take_state_fd_from_environment();
// FD_CLOEXEC on (inherit=false) or off (inherit=true) each one; the first failure.
Status set_inherited(std::span<const int> fds, bool inherit);

} // namespace forkd::upgrade
