// SPDX-License-Identifier: MIT
#pragma once
// Listening sockets: bound from a ListenAddress, or taken over from systemd socket activation.
// All are O_CLOEXEC, non-blocking, SO_REUSEADDR (TCP).
#include "common/address.hpp"
#include "common/base/unique_fd.hpp"
#include "common/base/unix_bind.hpp"

#include <optional>

#include <stdexcept>
#include <string>
#include <vector>

namespace forkd {

struct ListenSocket {
    UniqueFd fd;
    std::string configured;  // the config's text ("127.0.0.1:0", "systemd"), the reload key
    std::string bound;       // what it is bound to now ("127.0.0.1:41234", "unix:/run/x.sock")
    bool is_unix = false;
    std::optional<UnixSocketFile> unix_file;  // unlinked on close by the owner, if we created it
};

class BindError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Binds and listens. One address may give several sockets (a host name with v4 and v6
// addresses; "systemd" with several passed fds). Throws BindError:
// "cannot bind 127.0.0.1:80: Permission denied".
std::vector<ListenSocket> open_listeners(const ListenAddress& address, int backlog);
// Unlinks a unix: listener's socket file if forkd created it and it is still that file.
void unlink_unix_socket(const ListenSocket& socket);
// The kernel's maximum backlog (net.core.somaxconn), 4096 if unreadable.
int max_backlog();
// The fds sd_listen_fds() passes to us (LISTEN_PID checked), to keep across daemonize.
std::vector<int> systemd_listen_fds();

} // namespace forkd
