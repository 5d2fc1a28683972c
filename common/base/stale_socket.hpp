// SPDX-License-Identifier: MIT
#pragma once
// Before binding a UNIX socket at a path that may hold a previous run's socket file: one probe,
// one behaviour, for the unix: listeners and the control socket alike.
#include "common/base/error.hpp"

#include <string>

namespace forkd {

// Leaves PATH free for bind(2) if nothing uses it. A socket file there is probed with a
// connect: ECONNREFUSED (nobody listens) means stale, and it is unlinked; a socket that answers
// (connect succeeds, or EAGAIN: its backlog is full) is refused with EADDRINUSE; a file that is
// not a socket with EEXIST. Nothing at PATH is success. Any other failure is refused with its
// errno, and context naming the step ("inspect", "probe", "remove stale"): an unknown answer
// never costs a live server its path.
Status remove_stale_socket(const std::string& path);

} // namespace forkd
