// SPDX-License-Identifier: MIT
#include "daemon/master/limit_waits.hpp"

#include "common/log.hpp"

#include <algorithm>

namespace forkd {
namespace {
constexpr std::int64_t ns_per_ms = 1000000;
}

void LimitWaits::update(bool waiting, std::int64_t now_ns, const Context& context) {
    if (waiting == this->waiting()) return;
    if (waiting) {
        since_ns_ = now_ns;
        ++episodes_;
        log::warning("accept-waiting", {{"by", context.by}, {"limit", context.limit},
                                        {"active", context.active}});
        return;
    }
    const std::int64_t waited = std::max<std::int64_t>(0, now_ns - *since_ns_);
    waited_ns_ += waited;
    since_ns_.reset();
    log::notice("accept-resumed", {{"by", context.by}, {"limit", context.limit},
                                   {"waited_ms", std::uint64_t(waited / ns_per_ms)}});
}

std::uint64_t LimitWaits::waited_ms(std::int64_t now_ns) const {
    std::int64_t total = waited_ns_;
    if (since_ns_) total += std::max<std::int64_t>(0, now_ns - *since_ns_);
    return std::uint64_t(total / ns_per_ms);
}

} // namespace forkd
