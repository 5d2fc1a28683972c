// SPDX-License-Identifier: MIT
#pragma once
// The limits that "forkctl set" may change at runtime. In base (libc only) because forkd-spawner
// applies them too, and it links nothing of the configuration code.
namespace forkd {

enum class OverloadPolicy { wait, reject };

struct RuntimeLimits {
    unsigned max_connections = 256;   // 0 = unlimited
    unsigned max_per_source = 0;      // 0 = unlimited
    OverloadPolicy overload = OverloadPolicy::wait;
    unsigned connection_timeout_s = 0;
    unsigned idle_timeout_s = 0;
};

} // namespace forkd
