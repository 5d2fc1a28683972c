// SPDX-License-Identifier: MIT
#pragma once
// The master's messages to the service manager ($NOTIFY_SOCKET), sent so that the loop never
// blocks on a reader that falls behind (a full datagram queue makes a blocking sendmsg wait):
// every send is MSG_DONTWAIT on a socket of our own. What would block is kept and retried on a
// short timer: the state changes (READY, RELOADING, STOPPING) all, in order, the STATUS= text
// only in its latest version, and that at most once per status_interval and only when it
// changed. WATCHDOG=1 comes from a timer of our own at half WATCHDOG_USEC; a keep-alive that
// would block is dropped (the next one follows). Without NOTIFY_SOCKET every call is a no-op.
#include "common/base/unique_fd.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace forkd {

// Where to send: $NOTIFY_SOCKET as systemd hands it (a path, or "@name" for an abstract one).
struct NotifyAddress {
    sockaddr_un address{};
    socklen_t length = 0;
};
std::optional<NotifyAddress> parse_notify_address(std::string_view text);

class Notifier {
public:
    static constexpr std::chrono::milliseconds default_status_interval{1000};
    static constexpr std::chrono::milliseconds retry_interval{100};

    // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID and removes them from the environment,
    // so that no child (forkd-spawner, handlers) inherits them.
    static std::unique_ptr<Notifier> from_environment(sd_event* event);
    // Sends to `address` (nothing at all if it is empty); a keep-alive every watchdog_usec/2 if
    // that is not 0.
    Notifier(sd_event* event, std::optional<NotifyAddress> address, std::uint64_t watchdog_usec = 0,
             std::chrono::milliseconds status_interval = default_status_interval);
    Notifier(const Notifier&) = delete;  // its timers call back into it
    Notifier& operator=(const Notifier&) = delete;
    ~Notifier();

    // What from_environment() took out of the environment (NOTIFY_SOCKET, WATCHDOG_USEC and
    // WATCHDOG_PID), as NAME=VALUE, for a live upgrade's new image to find it again.
    const std::vector<std::string>& handover_environment() const { return handover_environment_; }

    void ready();      // READY=1, with the current STATUS= text
    void reloading();  // RELOADING=1 with MONOTONIC_USEC
    void stopping();
    void status(std::string_view text);  // sent only when it changed, at most once per interval

    // Messages kept because sending them would have blocked (state changes, a STATUS=).
    std::size_t pending() const {
        return socket_ ? states_.size() + (status_ != sent_status_ ? 1 : 0) : 0;
    }

private:
    enum class Kind { ready, reloading, stopping };
    void add_state(Kind kind, std::string payload);
    void flush();
    bool send(const std::string& message);  // false: it would block; kept by the caller
    void schedule(std::uint64_t after_usec);
    void keep_alive();

    struct StateMessage {
        Kind kind;
        std::string message;  // READY=1 gets the STATUS= text of when it is sent
    };
    bool send_state(const StateMessage& state);

    sd_event* event_ = nullptr;
    UniqueFd socket_;
    NotifyAddress address_;
    std::chrono::milliseconds status_interval_;
    std::deque<StateMessage> states_;  // in order, oldest first
    std::string status_;               // the latest STATUS= text
    std::string sent_status_;          // the last one the manager received
    std::int64_t status_sent_ns_ = 0;  // when it was sent (0: never)
    bool failure_logged_ = false;
    EventSourcePtr flush_timer_;
    EventSourcePtr watchdog_;
    std::vector<std::string> handover_environment_;
};

} // namespace forkd
