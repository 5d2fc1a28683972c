// SPDX-License-Identifier: MIT
#pragma once
// Inspecting processes through /proc (states, parents, trees, CPU time, fds) and the IPC
// objects of the system, for the tests' before/after comparisons.
#include <sys/types.h>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace forkd::test {

// Sanitizer builds: RSS is dominated by ASan's shadow memory and quarantine (freed memory is
// held back on purpose), so RSS bounds say nothing there and are not asserted.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif


// The one-letter state of /proc/PID/stat, nullopt if there is no such pid.
std::optional<char> proc_state(pid_t pid);
bool process_alive(pid_t pid);                     // exists and is not a zombie
pid_t proc_ppid(pid_t pid);                        // -1 if gone
std::string proc_comm(pid_t pid);                  // the name in /proc/PID/stat, "" if gone
std::vector<pid_t> proc_children(pid_t parent, bool include_zombies = false);
std::vector<pid_t> proc_descendants(pid_t root);   // live ones, recursively
std::uint64_t proc_cpu_ticks(pid_t pid);           // utime + stime (clock ticks)
std::size_t proc_fd_count(pid_t pid);
// What each of the process's fds points at ("socket:[123]", "/dev/null", ...), sorted: two
// snapshots compare as multisets, so a leaked or lost descriptor shows up by what it was.
std::vector<std::string> proc_fd_targets(pid_t pid);
std::size_t proc_rss_kb(pid_t pid);                // VmRSS of /proc/PID/status, 0 if gone
// Smallest fd number the process does not hold: a soft RLIMIT_NOFILE of it leaves no free fd.
int proc_lowest_free_fd(pid_t pid);
// SysV IPC (ipcs) and POSIX (/dev/shm) objects, one string each, for before/after comparison.
std::vector<std::string> ipc_objects();
// The IPC objects that exist now and did not in `before` (an earlier ipc_objects()).
std::vector<std::string> ipc_objects_added_since(const std::vector<std::string>& before);

} // namespace forkd::test
