// SPDX-License-Identifier: MIT
#pragma once
// forkctl's side of the control socket: connect, send one request line, read one reply line,
// and (for stop) wait for the EOF that means the daemon has exited. Every wait has a deadline.
#include "common/control/control_protocol.hpp"
#include "common/base/unique_fd.hpp"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

namespace forkd::ctl {

using Clock = std::chrono::steady_clock;
using Deadline = std::optional<Clock::time_point>;  // nullopt: no limit

Deadline deadline_after(std::optional<std::chrono::milliseconds> timeout);

// Exit codes of the contract.
enum ExitCode { exit_ok = 0, exit_failed = 1, exit_usage = 2, exit_unreachable = 3, exit_denied = 4 };

// A failure to talk to forkd: a one-line message (without "forkctl: ") and the exit code.
class ClientError : public std::runtime_error {
public:
    ClientError(int exit_code, const std::string& message)
        : std::runtime_error(message), exit_code_(exit_code) {}
    int exit_code() const { return exit_code_; }
private:
    int exit_code_;
};

class ControlConnection {
public:
    // Throws ClientError: exit 3 when nothing answers at PATH, exit 4 when access is denied.
    ControlConnection(const std::string& path, Deadline deadline);

    // Sends the request and reads the reply. Throws ClientError (exit 3) on timeout or hang-up,
    // (exit 1) on a reply that is not the protocol.
    control::Reply exchange(const control::Request& request, Deadline deadline);
    // After a stop: true once forkd has closed the connection and its process is gone (dead or
    // a zombie), false at the deadline. The EOF alone comes a moment before the exit completes.
    bool wait_exited(Deadline deadline);

private:
    bool wait_readable(Deadline deadline);
    std::string path_;
    UniqueFd fd_;
    pid_t server_pid_ = 0;  // SO_PEERCRED: the process that listens, i.e. forkd
};

// Connects to PATH; for an open command (status, list) refused there by the socket's mode, to
// the read-only socket beside it (read_only_control_socket) instead.
ControlConnection connect_for(const std::string& path, const control::Request& request, Deadline deadline);
// One request on a fresh connection (the protocol's unit), through connect_for.
control::Reply request_once(const std::string& path, const control::Request& request, Deadline deadline);

} // namespace forkd::ctl
