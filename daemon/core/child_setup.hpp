// SPDX-License-Identifier: MIT
#pragma once
// What every handler child does first, in the child between fork and the handler. All of it is
// async-signal-safe (plain syscalls), so it may also run in a vfork-style child.
#include <spawn.h>
#include <sys/types.h>

#include <cstddef>

namespace forkd {

// A process that forks handlers (the master, the spawner), once its signal set-up is done and
// before its first child: notes which signals have a disposition other than the default, so that
// children reset those few rather than making 64 syscalls per connection.
void record_signal_dispositions();
// Default dispositions (raw rt_sigaction, so glibc's reserved signals are reset too and no
// wrapper state is touched): the master's ignored SIGPIPE must not leak. Resets every signal
// unless record_signal_dispositions() ran.
void reset_signal_dispositions();
// An empty signal mask: the master blocks the signals its loop reads through signalfd.
void clear_signal_mask();
// Both of the above.
void reset_signal_state();
// posix_spawn attributes for a helper the master starts (forkd-spawner, an upgrade check):
// default signal dispositions and an empty mask, so that the master's blocked and ignored
// signals stay its own. posix_spawn applies them in the child, before its exec.
class CleanSignalsSpawnAttr {
public:
    CleanSignalsSpawnAttr();
    ~CleanSignalsSpawnAttr();
    CleanSignalsSpawnAttr(const CleanSignalsSpawnAttr&) = delete;
    CleanSignalsSpawnAttr& operator=(const CleanSignalsSpawnAttr&) = delete;
    const posix_spawnattr_t* get() const { return &attr_; }

private:
    posix_spawnattr_t attr_;
};
// The child dies with its parent (PR_SET_PDEATHSIG SIGKILL); false if the parent is already gone.
bool die_with_parent(pid_t parent_pid);
// Connection on fds 0 and 1; every fd above 2 closed. False on failure.
bool connection_to_stdio(int connection_fd);

// The user and groups a handler runs as (user/group), as plain data a forked or vfork-style
// child can use.
struct ChildIdentity {
    uid_t uid = 0;
    gid_t gid = 0;
    const gid_t* groups = nullptr;  // supplementary groups
    std::size_t group_count = 0;
    bool set_groups = true;         // false: the process already has them (and may not set them)
};
// The supplementary groups a built-in handler's identity may have: forkd-spawner receives them
// in a fixed-size record (spawner_protocol.hpp). A user in more is refused at load time.
constexpr std::size_t max_builtin_groups = 32;
// Whether drop_identity must call setgroups for these groups: always as root; otherwise only
// when they differ from the caller's own (an unprivileged daemon may run handlers as itself,
// and could not set even its own groups).
bool groups_need_setting(gid_t gid, const gid_t* groups, std::size_t count);
// Which step of drop_identity failed (errno tells why).
enum class IdentityStep { none, setgroups, setgid, setuid, verify, regained_root };
// groups, gid, uid: the order in which no failure leaves more privilege than asked for; then
// checks that the ids stuck and, when root was dropped, that it cannot be regained. Clears the
// death signal (the kernel does on a credential change): call die_with_parent() after it.
IdentityStep drop_identity(const ChildIdentity& identity);

} // namespace forkd
