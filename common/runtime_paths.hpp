// SPDX-License-Identifier: MIT
#pragma once
// Default run-time paths from the contract: RUNDIR is /run/forkd for root, else
// $XDG_RUNTIME_DIR/forkd, else /tmp/forkd-UID; an instance NAME names NAME.pid / NAME.sock.
#include <optional>
#include <string>

namespace forkd {

std::string runtime_dir();
std::string default_pidfile(const std::optional<std::string>& instance);
std::string default_control_socket(const std::optional<std::string>& instance);
// What forkctl dials without -s: the default above, except that a non-root user whose own
// default does not exist reaches the system daemon's socket (/run/forkd/NAME.sock) if present,
// as an operator in the control group expects.
std::string client_control_socket(const std::optional<std::string>& instance);
// The read-only control socket beside CONTROL_SOCKET (status and list for anyone, mode 0666):
// NAME.sock gives NAME.ro.sock, any other path PATH.ro.
std::string read_only_control_socket(const std::string& control_socket);
// /etc/forkd/forkd.conf for root (NAME.conf for an instance), none otherwise (without instance).
std::optional<std::string> default_config_file(const std::optional<std::string>& instance);

} // namespace forkd
