// SPDX-License-Identifier: MIT
#include "daemon/admission/token_bucket.hpp"

#include <algorithm>

namespace forkd {

void TokenBucket::set_rate(Rate rate) {
    rate_ = rate;
    tat_ns_ = 0;
    if (!rate.limited()) {
        interval_ns_ = burst_ns_ = 0;
        return;
    }
    const std::int64_t span = std::int64_t(std::max(rate.seconds, 1u)) * 1000000000;
    interval_ns_ = std::max<std::int64_t>(span / rate.count, 1);
    burst_ns_ = interval_ns_ * rate.count;
}

std::int64_t TokenBucket::wait_ns(std::int64_t now_ns) const {
    if (!rate_.limited()) return 0;
    // Taking one now would move tat to max(tat, now) + interval; allowed while that is within
    // a full bucket's span of now.
    const std::int64_t next = std::max(tat_ns_, now_ns) + interval_ns_;
    return std::max<std::int64_t>(next - now_ns - burst_ns_, 0);
}

bool TokenBucket::take(std::int64_t now_ns) {
    if (!rate_.limited()) return true;
    if (wait_ns(now_ns) > 0) return false;
    tat_ns_ = std::max(tat_ns_, now_ns) + interval_ns_;
    return true;
}

} // namespace forkd
