// SPDX-License-Identifier: MIT
#pragma once
// The state record a live upgrade hands from the old image to the new one (same pid, execve).
// Every descriptor named here is inherited (FD_CLOEXEC cleared on exactly these); the rest of
// what the master knows is in the record. Layout:
//   "FORKDUPG" | u32 version | u32 body length | body | u32 FNV-1a of the body
// The body is the fields below in order; strings and lists carry their length, and every read is
// bounds-checked, so a truncated or corrupt record is refused with a reason, never half-read.
// A change of the body (or of the spawner protocol a running forkd-spawner speaks) bumps
// state_version; a new binary that cannot read the running one's version refuses the upgrade in
// its check mode, before anything is replaced. upgrade_state.cpp lists each record's fields in
// one table (name, member, codec; since(N) for a field version N added) that encoding and
// decoding both walk: a new field is one row there, and its bytes are pinned in
// tests/unit/test_upgrade_state.cpp.
#include "common/base/error.hpp"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forkd::upgrade {

// 2: a worker carries its accepted count and the generation of its last configuration.
// 3: and since when it retires (0: it works); the scoreboard the record hands on holds the
//    per-source tables (daemon/core/scoreboard.hpp).
constexpr std::uint32_t state_version = 3;
// Versions this build can read (a newer build may read older records too).
constexpr std::uint32_t oldest_readable_version = 1;
inline bool can_read(std::uint32_t version) {
    return version >= oldest_readable_version && version <= state_version;
}
// Versions whose daemon this build can take over. Not 1 or 2, though it reads their records:
// their scoreboard has the older layout, and their forkd-spawner and workers, which the new image
// would adopt, keep using it. The new binary's check refuses such an upgrade and the old image
// carries on (a restart moves to the new layout).
constexpr std::uint32_t oldest_adoptable_version = 3;
inline bool can_take_over(std::uint32_t version) {
    return version >= oldest_adoptable_version && version <= state_version;
}

// A unix socket file forkd created (unlinked on close if it is still that file).
struct SocketFile {
    bool owned = false;
    std::string path;
    std::uint64_t dev = 0, ino = 0;
    bool operator==(const SocketFile&) const = default;
};

struct ListenerState {
    int fd = -1;
    std::uint32_t tag = 0;
    std::string configured, bound;
    bool is_unix = false;
    SocketFile file;
    bool operator==(const ListenerState&) const = default;
};

struct ControlSocketState {
    int fd = -1;
    SocketFile file;
    bool operator==(const ControlSocketState&) const = default;
};

struct ConnectionState {
    std::uint64_t id = 0;
    std::uint32_t slot = 0;
    std::int32_t pid = 0;
    std::uint8_t served_by = 0;   // ServedBy
    std::string peer, source;
    std::int64_t started_ns = 0;  // CLOCK_MONOTONIC, which an execve keeps
    std::int64_t deadline_ns = 0; // its timer (connection-timeout or kill grace); 0: none
    bool term_sent = false;
    std::int8_t ended_by = -1;    // Ending, -1: not ended by the master
    int stderr_fd = -1;           // exec'd handler: its stderr pipe
    int tcp_view_fd = -1;         // exec'd handler on TCP: the master's dup
    bool operator==(const ConnectionState&) const = default;
};

// Event mode: one per running forkd-worker, its pid and the master's end of its socket; the new
// image adopts it as a retiring worker. Empty in fork mode. Version 1 had pid, fd and index
// only (and always an empty list): a version-1 record is still read.
struct WorkerState {
    std::int32_t pid = 0;
    int fd = -1;
    std::uint32_t index = 0;
    std::uint64_t accepted = 0;    // connections it accepted (status.workers)
    std::uint64_t generation = 0;  // of the last configuration sent to it
    std::int64_t retiring_since_ns = 0;  // monotonic; 0: not retiring
    bool operator==(const WorkerState&) const = default;
};

struct UpgradeState {
    std::uint32_t generation = 0;  // of the image that wrote it
    std::string from_version;      // forkd_version() of the image that wrote it
    std::string binary;            // the path the daemon was started from
    std::vector<std::string> argv; // its command line (argv[0] included)
    std::int64_t started_ns = 0;   // when the daemon started (uptime goes on)
    std::uint8_t state = 0;        // 0 running, 1 draining
    int pidfile_fd = -1;
    std::string pidfile_path;
    int scoreboard_fd = -1;
    std::int32_t spawner_pid = 0;  // 0: none running
    int spawner_fd = -1;
    std::uint64_t spawner_generation = 0;
    std::uint32_t next_listener_tag = 1;
    std::vector<ListenerState> listeners;
    std::vector<ControlSocketState> control_sockets;  // the full one, then the read-only one
    std::vector<ConnectionState> connections;
    std::vector<std::pair<std::string, std::uint64_t>> totals;     // by name; unknown names ignored
    std::vector<std::pair<std::string, std::string>> settings;     // forkctl set values in force
    std::vector<WorkerState> workers;

    bool operator==(const UpgradeState&) const = default;

    // Every descriptor the record names (to clear or set FD_CLOEXEC on).
    std::vector<int> descriptors() const;
};

std::string encode_state(const UpgradeState& state);
// Refuses a wrong magic, a version this build cannot read, a truncated body, a bad checksum
// and trailing bytes, each with its reason.
Result<UpgradeState> decode_state(std::string_view bytes);
// The version a record says it has, or an error when it is no record at all.
Result<std::uint32_t> state_version_of(std::string_view bytes);

} // namespace forkd::upgrade
