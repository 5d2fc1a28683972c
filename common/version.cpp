// SPDX-License-Identifier: MIT
#include "common/version.hpp"

namespace forkd {

std::string_view forkd_version() { return FORKD_VERSION; }

} // namespace forkd
