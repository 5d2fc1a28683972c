// SPDX-License-Identifier: MIT
#pragma once
// The one way into C++ from an sd-event callback: no exception may unwind through libsystemd's
// C code (that is std::terminate, and the daemon dies with every connection it serves).
//
// What a failed callback returns to sd-event is 0, on purpose. sd-event disables a source whose
// callback returns a negative errno, and every source of the master is one it cannot do without:
// a disabled signal source means no more reaping or stopping, a disabled listener or spawner
// socket stops serving without a word, a disabled control client is never answered. A callback
// that throws therefore leaves its source as it was (a one-shot timer that fired stays off, as
// it would have anyway) and the loop goes on; the failure is one log line:
//   event=callback-failed source=NAME error="..."
// NAME is the source's description (event_sources.hpp sets it). A source that threw on every
// dispatch would log every time, which is what an operator needs to see; the master's sources
// consume what woke them before they can throw, so none spins.
#include <systemd/sd-event.h>

#include <exception>

namespace forkd::event_loop {

// Logs the line above. `error` is what() or a fixed text for exceptions not from std.
void log_callback_failure(sd_event_source* source, const char* error) noexcept;

// Runs body(); whatever it throws is logged and swallowed. Returns what sd-event is given.
template <class Body>
int run_guarded(sd_event_source* source, Body&& body) noexcept {
    try {
        body();
    } catch (const std::exception& e) {
        log_callback_failure(source, e.what());
    } catch (...) {
        log_callback_failure(source, "unknown exception");
    }
    return 0;
}

} // namespace forkd::event_loop
