// SPDX-License-Identifier: MIT
#pragma once
// The limits that "forkctl set" may change at runtime, and the admission settings a reload
// changes (source-prefix). In base (libc only) because forkd-spawner applies them too, and it
// links nothing of the configuration code.
#include <cstdint>

namespace forkd {

enum class OverloadPolicy { wait, reject };

// N new connections per S seconds, a burst of N (max-connection-rate, max-per-source-rate).
struct Rate {
    unsigned count = 0;    // 0: no limit
    unsigned seconds = 1;  // at least 1
    bool limited() const { return count > 0; }
    bool operator==(const Rate&) const = default;
};

// What counts as one source for max-per-source and max-per-source-rate: client addresses
// equal in their first v4 (IPv4) or v6 (IPv6) bits.
struct SourcePrefix {
    std::uint8_t v4 = 32;
    std::uint8_t v6 = 128;
    bool operator==(const SourcePrefix&) const = default;
};

struct RuntimeLimits {
    unsigned max_connections = 256;   // 0 = unlimited
    unsigned max_per_source = 0;      // 0 = unlimited
    OverloadPolicy overload = OverloadPolicy::wait;
    unsigned connection_timeout_s = 0;
    unsigned idle_timeout_s = 0;
    Rate max_connection_rate;
    Rate max_per_source_rate;
    SourcePrefix source_prefix;
};

} // namespace forkd
