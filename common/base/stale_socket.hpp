// SPDX-License-Identifier: MIT
#pragma once
// Before binding a UNIX socket at a path that may hold a previous run's socket file: one probe,
// one behaviour, for the unix: listeners and the control socket alike.
#include "common/base/error.hpp"
#include "common/base/run_dir.hpp"

#include <string>

namespace forkd {

// Leaves RUN's name free for bind(2) if nothing uses it. What is there is inspected in RUN's
// checked directory without following a symbolic link. A socket file is probed with a connect:
// ECONNREFUSED (nobody listens) means stale, and it is unlinked; a socket that answers (connect
// succeeds, or EAGAIN: its backlog is full) is refused with EADDRINUSE; anything that is not a
// socket (a file, a symbolic link) with EEXIST. Nothing there is success. Any other failure is
// refused with its errno, and context naming the step ("inspect", "probe", "remove stale"): an
// unknown answer never costs a live server its path.
Status remove_stale_socket(const RunPath& run);

} // namespace forkd
