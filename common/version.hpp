// SPDX-License-Identifier: MIT
#pragma once
// The project's version (CMake's PROJECT_VERSION), compiled into one unit only: a version bump
// then rebuilds that unit and relinks, instead of recompiling everything (the packaging check's
// live-upgrade build bumps it).
#include <string_view>

namespace forkd {

std::string_view forkd_version();

} // namespace forkd
