// SPDX-License-Identifier: MIT
#pragma once
// max-connection-rate and max-per-source-rate: a token bucket of N tokens refilled at N per S
// seconds, kept as one number (the generic cell rate algorithm's "theoretical arrival time":
// the bucket is full at or after `tat_ns`, and each token taken moves it one interval later).
// Pure: the caller passes the time (CLOCK_MONOTONIC ns), so tests inject their own clock.
#include "common/base/runtime_limits.hpp"

#include <cstdint>

namespace forkd {

class TokenBucket {
public:
    TokenBucket() = default;
    explicit TokenBucket(Rate rate) { set_rate(rate); }

    // A new rate starts with a full bucket (forkctl set, reload).
    void set_rate(Rate rate);
    Rate rate() const { return rate_; }

    // Whether a token is there at now_ns (always, without a limit).
    bool available(std::int64_t now_ns) const { return wait_ns(now_ns) == 0; }
    // How long until one is: 0 if one is there now.
    std::int64_t wait_ns(std::int64_t now_ns) const;
    // Takes one if one is there; false (and nothing taken) otherwise.
    bool take(std::int64_t now_ns);

    // The state, for a table of buckets (SourceRates): 0 is a full bucket.
    std::int64_t tat_ns() const { return tat_ns_; }
    void restore(std::int64_t tat_ns) { tat_ns_ = tat_ns; }
    // Per token, and a full bucket's worth, in ns.
    std::int64_t interval_ns() const { return interval_ns_; }

private:
    Rate rate_;
    std::int64_t interval_ns_ = 0;  // S seconds / N
    std::int64_t burst_ns_ = 0;     // N intervals: the span a full bucket covers
    std::int64_t tat_ns_ = 0;
};

} // namespace forkd
