// SPDX-License-Identifier: MIT
#pragma once
// Owning handles for sd-event objects: a source is disabled and unreferenced exactly once.
#include <systemd/sd-event.h>
#include <memory>

namespace forkd {

struct EventSourceRelease {
    void operator()(sd_event_source* source) const { sd_event_source_disable_unref(source); }
};
using EventSourcePtr = std::unique_ptr<sd_event_source, EventSourceRelease>;

struct EventRelease {
    void operator()(sd_event* event) const { sd_event_unref(event); }
};
using EventPtr = std::unique_ptr<sd_event, EventRelease>;

} // namespace forkd
