// SPDX-License-Identifier: MIT
#include "daemon/master/notify.hpp"

#include "common/base/error.hpp"
#include "common/base/monotonic_clock.hpp"
#include "common/log.hpp"
#include "daemon/event_loop/event_sources.hpp"

#include <systemd/sd-daemon.h>

#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace forkd {

namespace {

constexpr std::int64_t ns_per_usec = 1000;

std::uint64_t usec_of(std::chrono::milliseconds ms) {
    return static_cast<std::uint64_t>(std::chrono::microseconds(ms).count());
}

// One field, never an injected one.
std::string one_line(std::string_view text) {
    std::string line(text);
    std::replace(line.begin(), line.end(), '\n', ' ');
    return line;
}

} // namespace

std::optional<NotifyAddress> parse_notify_address(std::string_view text) {
    NotifyAddress a;
    a.address.sun_family = AF_UNIX;
    if (text.size() < 2 || (text[0] != '/' && text[0] != '@') ||
        text.size() >= sizeof a.address.sun_path)
        return std::nullopt;
    std::copy(text.begin(), text.end(), a.address.sun_path);
    // An abstract name is NUL-led and not NUL-terminated: its length is exactly what it is.
    if (text[0] == '@') a.address.sun_path[0] = '\0';
    a.length = socklen_t(offsetof(sockaddr_un, sun_path) + text.size() + (text[0] == '/' ? 1 : 0));
    return a;
}

std::unique_ptr<Notifier> Notifier::from_environment(sd_event* event) {
    std::optional<NotifyAddress> address;
    if (const char* socket = ::getenv("NOTIFY_SOCKET")) {
        address = parse_notify_address(socket);
        if (!address) log::warning("notify-socket-unusable", {{"address", socket}});
    }
    std::uint64_t watchdog_usec = 0;
    // Also unsets WATCHDOG_USEC and WATCHDOG_PID; a watchdog meant for another pid is not ours.
    if (sd_watchdog_enabled(1, &watchdog_usec) <= 0) watchdog_usec = 0;
    std::vector<std::string> handover;
    if (const char* socket = ::getenv("NOTIFY_SOCKET")) handover.push_back(std::string("NOTIFY_SOCKET=") + socket);
    if (watchdog_usec)
        handover.insert(handover.end(), {"WATCHDOG_USEC=" + std::to_string(watchdog_usec),
                                         "WATCHDOG_PID=" + std::to_string(::getpid())});
    ::unsetenv("NOTIFY_SOCKET");
    auto notifier = std::make_unique<Notifier>(event, address, watchdog_usec);
    notifier->handover_environment_ = std::move(handover);
    return notifier;
}

Notifier::Notifier(sd_event* event, std::optional<NotifyAddress> address,
                   std::uint64_t watchdog_usec, std::chrono::milliseconds status_interval)
    : event_(event), status_interval_(status_interval) {
    if (!address) return;
    address_ = *address;
    socket_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!socket_) {
        log::warning("notify-failed", {{"error", errno_text(errno)}});
        return;
    }
    if (watchdog_usec)
        if (auto ticking = event_loop::add_periodic(event_, watchdog_usec / 2, "watchdog",
                                                    [this] { keep_alive(); }))
            watchdog_ = std::move(*ticking);
}

Notifier::~Notifier() = default;

void Notifier::ready() { add_state(Kind::ready, "READY=1"); }

void Notifier::reloading() {
    add_state(Kind::reloading, "RELOADING=1\nMONOTONIC_USEC=" +
                                   std::to_string(monotonic_ns() / ns_per_usec));
}

void Notifier::stopping() { add_state(Kind::stopping, "STOPPING=1"); }

void Notifier::status(std::string_view text) {
    std::string line = one_line(text);
    if (line == status_) return;
    status_ = std::move(line);
    flush();
}

// A state change that supersedes a pending one of its kind supersedes what followed it too
// (RELOADING, READY, then RELOADING again: the manager needs only the last RELOADING), so at
// most one of each kind waits, in the order they happened.
void Notifier::add_state(Kind kind, std::string message) {
    if (!socket_) return;
    auto same = std::find_if(states_.begin(), states_.end(),
                             [kind](const StateMessage& s) { return s.kind == kind; });
    states_.erase(same, states_.end());
    states_.push_back({kind, std::move(message)});
    flush();
}

bool Notifier::send_state(const StateMessage& state) {
    if (state.kind != Kind::ready || status_.empty()) return send(state.message);
    if (!send(state.message + "\nSTATUS=" + status_)) return false;
    sent_status_ = status_;
    status_sent_ns_ = monotonic_ns();
    return true;
}

// Sends what waits, oldest state change first, then the latest STATUS= text when its interval
// has passed; stops at the first message that would block and tries again shortly.
void Notifier::flush() {
    if (!socket_) return;
    while (!states_.empty()) {
        if (!send_state(states_.front())) return schedule(usec_of(retry_interval));
        states_.pop_front();
    }
    if (status_ == sent_status_) return;
    const std::int64_t now = monotonic_ns();
    const std::int64_t due =
        status_sent_ns_ + std::chrono::nanoseconds(status_interval_).count();
    if (status_sent_ns_ && now < due) return schedule(std::uint64_t((due - now) / ns_per_usec) + 1);
    if (!send("STATUS=" + status_)) return schedule(usec_of(retry_interval));
    sent_status_ = status_;
    status_sent_ns_ = now;
}

bool Notifier::send(const std::string& message) {
    for (;;) {
        const ssize_t n = ::sendto(socket_.get(), message.data(), message.size(),
                                   MSG_DONTWAIT | MSG_NOSIGNAL,
                                   reinterpret_cast<const sockaddr*>(&address_.address),
                                   address_.length);
        if (n >= 0) return true;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        // No reader at all (the manager went away): nothing to wait for. Said once.
        if (!failure_logged_) log::warning("notify-failed", {{"error", errno_text(errno)}});
        failure_logged_ = true;
        return true;
    }
}

void Notifier::schedule(std::uint64_t after_usec) {
    if (flush_timer_) {
        if (event_loop::rearm(flush_timer_.get(), after_usec)) return;
        flush_timer_.reset();
    }
    if (auto timer = event_loop::add_timer(event_, after_usec, "notify-retry", [this] { flush(); }))
        flush_timer_ = std::move(*timer);
}

// A keep-alive that would block is dropped: the next tick sends another.
void Notifier::keep_alive() { (void)send("WATCHDOG=1"); }

} // namespace forkd
