// SPDX-License-Identifier: MIT
#pragma once
// No C++ exception may cross a libevent callback (C code unwinds badly): every callback the
// worker gives libevent goes through guarded(), which reports an escaped exception and ends the
// process; the master counts its connections failed and starts another worker.
#include <event2/event.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>

namespace forkd::worker {

template <class Body>
void guarded(const char* where, Body&& body) noexcept {
    try {
        body();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "forkd-worker: %s: %s\n", where, e.what());
        std::_Exit(1);
    } catch (...) {
        std::fprintf(stderr, "forkd-worker: %s: unknown exception\n", where);
        std::_Exit(1);
    }
}

struct EventFree {
    void operator()(event* e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventFree>;

struct EventBaseFree {
    void operator()(event_base* b) const { event_base_free(b); }
};
using EventBasePtr = std::unique_ptr<event_base, EventBaseFree>;

} // namespace forkd::worker
