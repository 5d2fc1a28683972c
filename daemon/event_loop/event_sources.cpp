// SPDX-License-Identifier: MIT
#include "daemon/event_loop/event_sources.hpp"

#include <system_error>

namespace forkd::event_loop {

Status rearm(sd_event_source* timer, std::uint64_t after_usec) {
    if (const int rc = sd_event_source_set_time_relative(timer, after_usec); rc < 0)
        return Error{-rc, "sd_event_source_set_time_relative"};
    if (const int rc = sd_event_source_set_enabled(timer, SD_EVENT_ONESHOT); rc < 0)
        return Error{-rc, "sd_event_source_set_enabled"};
    return {};
}

EventSourcePtr value_or_throw(Result<EventSourcePtr> added) {
    if (!added) throw std::system_error(added.error().code, std::generic_category(),
                                        added.error().context);
    return std::move(added.value());
}

} // namespace forkd::event_loop
