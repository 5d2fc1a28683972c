// SPDX-License-Identifier: MIT
#pragma once
// Adding sd-event sources whose callback is any C++ callable: it runs through run_guarded
// (callback_guard.hpp), so no hand-written static trampoline is needed and none can let an
// exception escape. The callable belongs to its source: it is destroyed when the source is
// (EventSourcePtr), after the dispatch in progress if the callback drops its own source.
// Each source gets a description, the NAME of its callback-failed log line.
#include "common/base/error.hpp"
#include "daemon/event_loop/callback_guard.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"

#include <sys/signalfd.h>
#include <time.h>

#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace forkd::event_loop {

namespace detail {

template <class F>
void destroy_callable(void* userdata) {
    std::unique_ptr<F> owned(static_cast<F*>(userdata));
}

// A callback may take the event's argument or nothing.
template <class F, class Arg>
void call(F& callback, Arg&& arg) {
    if constexpr (std::is_invocable_v<F&, Arg>) callback(std::forward<Arg>(arg));
    else callback();
}

template <class F>
int on_io(sd_event_source* source, int, std::uint32_t revents, void* userdata) noexcept {
    return run_guarded(source, [&] { call(*static_cast<F*>(userdata), revents); });
}

template <class F>
int on_signal(sd_event_source* source, const signalfd_siginfo* info, void* userdata) noexcept {
    return run_guarded(source, [&] { call(*static_cast<F*>(userdata), *info); });
}

template <class F>
int on_time(sd_event_source* source, std::uint64_t, void* userdata) noexcept {
    return run_guarded(source, [&] { (*static_cast<F*>(userdata))(); });
}

template <class F>
int on_defer(sd_event_source* source, void* userdata) noexcept {
    return run_guarded(source, [&] { (*static_cast<F*>(userdata))(); });
}

template <class F>
struct Periodic {
    std::uint64_t period_usec;
    F callback;
};

// Re-armed before the callback runs: a tick that throws does not end the ticking.
template <class F>
int on_tick(sd_event_source* source, std::uint64_t now, void* userdata) noexcept {
    auto& periodic = *static_cast<Periodic<F>*>(userdata);
    sd_event_source_set_time(source, now + periodic.period_usec);
    return run_guarded(source, [&] { periodic.callback(); });
}

// Hands the callable to the source once sd-event accepted it (rc is the sd_event_add_* result).
template <class F>
Result<EventSourcePtr> adopt(int rc, sd_event_source* source, std::unique_ptr<F> callable,
                             const char* name, const char* what) {
    if (rc < 0) return Error{-rc, what};
    EventSourcePtr owned(source);
    if (const int r = sd_event_source_set_destroy_callback(source, destroy_callable<F>); r < 0)
        return Error{-r, "sd_event_source_set_destroy_callback"};
    (void)callable.release();
    sd_event_source_set_description(source, name);
    return owned;
}

} // namespace detail

// An I/O source calling on_ready(revents) or on_ready().
template <class F>
Result<EventSourcePtr> add_io(sd_event* event, int fd, std::uint32_t events, const char* name,
                              F on_ready) {
    auto callable = std::make_unique<F>(std::move(on_ready));
    sd_event_source* source = nullptr;
    const int rc = sd_event_add_io(event, &source, fd, events, detail::on_io<F>, callable.get());
    return detail::adopt(rc, source, std::move(callable), name, "sd_event_add_io");
}

// A signal source (the signal is blocked by the caller) calling on_signal(info) or on_signal().
template <class F>
Result<EventSourcePtr> add_signal(sd_event* event, int signo, const char* name, F on_signal) {
    auto callable = std::make_unique<F>(std::move(on_signal));
    sd_event_source* source = nullptr;
    const int rc = sd_event_add_signal(event, &source, signo, detail::on_signal<F>, callable.get());
    return detail::adopt(rc, source, std::move(callable), name, "sd_event_add_signal");
}

// A one-shot CLOCK_MONOTONIC timer, due after_usec from now, calling on_due().
template <class F>
Result<EventSourcePtr> add_timer(sd_event* event, std::uint64_t after_usec, const char* name,
                                 F on_due) {
    auto callable = std::make_unique<F>(std::move(on_due));
    sd_event_source* source = nullptr;
    const int rc = sd_event_add_time_relative(event, &source, CLOCK_MONOTONIC, after_usec, 0,
                                              detail::on_time<F>, callable.get());
    return detail::adopt(rc, source, std::move(callable), name, "sd_event_add_time");
}

// Calls run() once, on the loop's next iteration. Not a timer due now: sd-event lets a timer
// of the default accuracy fire up to 250 ms late when nothing else wakes the loop.
template <class F>
Result<EventSourcePtr> add_next_iteration(sd_event* event, const char* name, F run) {
    auto callable = std::make_unique<F>(std::move(run));
    sd_event_source* source = nullptr;
    const int rc = sd_event_add_defer(event, &source, detail::on_defer<F>, callable.get());
    return detail::adopt(rc, source, std::move(callable), name, "sd_event_add_defer");
}

// A CLOCK_MONOTONIC timer calling on_tick() every period_usec, the first time one period from now.
template <class F>
Result<EventSourcePtr> add_periodic(sd_event* event, std::uint64_t period_usec, const char* name,
                                    F on_tick) {
    using Callable = detail::Periodic<F>;
    auto callable = std::make_unique<Callable>(Callable{period_usec, std::move(on_tick)});
    sd_event_source* source = nullptr;
    const int rc = sd_event_add_time_relative(event, &source, CLOCK_MONOTONIC, period_usec, 0,
                                              detail::on_tick<F>, callable.get());
    auto added = detail::adopt(rc, source, std::move(callable), name, "sd_event_add_time");
    if (added) sd_event_source_set_enabled(added->get(), SD_EVENT_ON);
    return added;
}

// Makes a one-shot timer due after_usec from now, whether it is still pending or already fired.
Status rearm(sd_event_source* timer, std::uint64_t after_usec);

// For start-up, where a source the loop refuses is fatal: throws std::system_error.
EventSourcePtr value_or_throw(Result<EventSourcePtr> added);

} // namespace forkd::event_loop
