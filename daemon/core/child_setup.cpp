// SPDX-License-Identifier: MIT
#include "daemon/core/child_setup.hpp"

#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdint>
#include <vector>

namespace forkd {

namespace {

// The kernel's sigaction layout, for rt_sigaction called directly.
struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    std::uint64_t mask;
};
constexpr int max_signal = 64;

long kernel_sigaction(int sig, const KernelSigaction* act, KernelSigaction* old) {
    return syscall(SYS_rt_sigaction, sig, act, old, sizeof(std::uint64_t));
}

// Written once by the forking process before its first fork; children only read their copy.
struct ChangedSignals {
    bool recorded = false;
    int count = 0;
    int signals[max_signal] = {};
};
ChangedSignals changed_signals;

} // namespace

CleanSignalsSpawnAttr::CleanSignalsSpawnAttr() {
    posix_spawnattr_init(&attr_);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr_, &none);
    posix_spawnattr_setsigdefault(&attr_, &all);
    posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

CleanSignalsSpawnAttr::~CleanSignalsSpawnAttr() { posix_spawnattr_destroy(&attr_); }

void record_signal_dispositions() {
    ChangedSignals found;
    for (int sig = 1; sig <= max_signal; ++sig) {
        KernelSigaction current{};
        if (sig == SIGKILL || sig == SIGSTOP || kernel_sigaction(sig, nullptr, &current) != 0)
            continue;
        if (current.handler != SIG_DFL) found.signals[found.count++] = sig;
    }
    found.recorded = true;
    changed_signals = found;
}

void reset_signal_dispositions() {
    KernelSigaction dfl{};
    dfl.handler = SIG_DFL;
    if (changed_signals.recorded) {
        for (int i = 0; i < changed_signals.count; ++i)
            kernel_sigaction(changed_signals.signals[i], &dfl, nullptr);
        return;
    }
    for (int sig = 1; sig <= max_signal; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        kernel_sigaction(sig, &dfl, nullptr);
    }
}

void clear_signal_mask() {
    const std::uint64_t empty = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, nullptr, sizeof(std::uint64_t));
}

void reset_signal_state() {
    reset_signal_dispositions();
    clear_signal_mask();
}

bool die_with_parent(pid_t parent_pid) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return false;
    // The parent may have died between fork and prctl: then nobody would send the signal.
    return getppid() == parent_pid;
}

bool connection_to_stdio(int connection_fd) {
    if (dup2(connection_fd, 0) < 0 || dup2(connection_fd, 1) < 0) return false;
    return syscall(SYS_close_range, 3U, ~0U, 0U) == 0;
}

namespace {
std::vector<gid_t> sorted_unique(std::vector<gid_t> groups) {
    std::sort(groups.begin(), groups.end());
    groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
    return groups;
}
} // namespace

bool groups_need_setting(gid_t gid, const gid_t* groups, std::size_t count) {
    if (geteuid() == 0) return true;
    const int have = getgroups(0, nullptr);
    if (have < 0) return true;
    std::vector<gid_t> current(static_cast<std::size_t>(have));
    if (getgroups(have, current.data()) != have) return true;
    std::vector<gid_t> wanted(groups, groups + count);
    // The primary group grants access either way: {} with gid 5 is {5} with gid 5.
    current.push_back(getegid());
    wanted.push_back(gid);
    return sorted_unique(current) != sorted_unique(wanted);
}

IdentityStep drop_identity(const ChildIdentity& id) {
    const bool was_root = syscall(SYS_geteuid) == 0;
    if (id.set_groups && syscall(SYS_setgroups, id.group_count, id.groups) < 0) return IdentityStep::setgroups;
    if (syscall(SYS_setgid, id.gid) < 0) return IdentityStep::setgid;
    if (syscall(SYS_setuid, id.uid) < 0) return IdentityStep::setuid;
    if (syscall(SYS_getuid) != id.uid || syscall(SYS_geteuid) != id.uid || syscall(SYS_getgid) != id.gid ||
        syscall(SYS_getegid) != id.gid ||
        (id.set_groups && syscall(SYS_getgroups, 0, nullptr) != static_cast<long>(id.group_count))) {
        errno = EPERM;
        return IdentityStep::verify;
    }
    if (was_root && id.uid != 0 &&
        (syscall(SYS_setuid, 0) == 0 || (id.gid != 0 && syscall(SYS_setgid, 0) == 0))) {
        errno = EPERM;
        return IdentityStep::regained_root;
    }
    return IdentityStep::none;
}

} // namespace forkd
