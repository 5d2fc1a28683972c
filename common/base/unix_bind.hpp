// SPDX-License-Identifier: MIT
#pragma once
// Binding a UNIX socket (the control sockets, unix: listeners) in a checked run directory
// (common/base/run_dir.hpp): a stale socket there is replaced only if nothing answers on it, the
// file is created with its final mode (the umask is set around bind, so it is never visible with
// a wider one), and it is verified to have appeared in the directory that was checked.
#include "common/base/error.hpp"
#include "common/base/run_dir.hpp"
#include "common/base/unique_fd.hpp"

#include <sys/types.h>

namespace forkd {

// The file a bind created, in its checked directory (held open).
struct UnixSocketFile {
    RunPath run;
    dev_t dev = 0;
    ino_t ino = 0;
    // Unlinks it if the name still is this file (a successor's socket stays).
    void unlink() const;
};

struct BoundUnixSocket {
    UniqueFd fd;
    UnixSocketFile file;
};

// A bound, not yet listening, SOCK_STREAM socket (CLOEXEC, NONBLOCK) at RUN with MODE. Errors
// carry the step as context: "inspect", "probe", "remove stale" (remove_stale_socket: EADDRINUSE
// a live server, EEXIST not a socket), "create", "bind", "verify" (the directory was moved
// while binding), "chmod".
Result<BoundUnixSocket> bind_unix_socket(RunPath run, mode_t mode);

} // namespace forkd
