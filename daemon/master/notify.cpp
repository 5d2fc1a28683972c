// SPDX-License-Identifier: MIT
#include "daemon/master/notify.hpp"

#include "common/base/monotonic_clock.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <algorithm>
#include <string>

namespace forkd::notify {

namespace {

// The last STATUS= text, so that repeated identical updates are not sent and READY=1 can
// carry the current status along.
std::string& current_status() {
    static std::string status;
    return status;
}

void send(const std::string& message) {
    // sd_notify() returns 0 without NOTIFY_SOCKET; an error is not worth stopping a daemon for.
    (void)sd_notify(0, message.c_str());
}

unsigned long long monotonic_usec() { return static_cast<unsigned long long>(monotonic_ns() / 1000); }

} // namespace

void ready() {
    std::string message = "READY=1";
    if (!current_status().empty()) message += "\nSTATUS=" + current_status();
    send(message);
}

void reloading() {
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
}

void stopping() {
    send("STOPPING=1");
}

void status(std::string_view text) {
    std::string line(text);
    std::replace(line.begin(), line.end(), '\n', ' ');  // one field, never an injected one
    if (line == current_status()) return;
    current_status() = std::move(line);
    send("STATUS=" + current_status());
}

} // namespace forkd::notify
