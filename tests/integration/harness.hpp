// SPDX-License-Identifier: MIT
#pragma once
// The integration harness, all of it: the real forkd/forkctl binaries in a temp dir, on loopback
// with port 0 (the daemon logs "event=listening address=HOST:PORT"), synchronised on readiness
// (READY=1 on a test NOTIFY_SOCKET, the pidfile, the control socket), never on sleeps.
// Each part is its own header in harness/, by what it helps with.
#include "harness/commands.hpp"   // run(), forkctl(), status_json()
#include "harness/daemon.hpp"     // the daemon under test: start, readiness, log, stop
#include "harness/files.hpp"      // TempDir, write_file(), read_file()
#include "harness/haproxy.hpp"    // Debian's haproxy in front of forkd, its stats socket
#include "harness/proc.hpp"       // /proc inspection, IPC objects
#include "harness/sockets.hpp"    // clients, echo round trips, listeners
#include "harness/wait.hpp"       // Millis, eventually()
