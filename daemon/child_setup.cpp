#include "daemon/child_setup.hpp"

#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

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

} // namespace

void reset_signal_dispositions() {
    KernelSigaction dfl{};
    dfl.handler = SIG_DFL;
    for (int sig = 1; sig <= max_signal; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof(std::uint64_t));
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

bool die_with_master(pid_t master_pid) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return false;
    // The master may have died between fork and prctl: then nobody would send the signal.
    return getppid() == master_pid;
}

bool connection_to_stdio(int connection_fd) {
    if (dup2(connection_fd, 0) < 0 || dup2(connection_fd, 1) < 0) return false;
    return syscall(SYS_close_range, 3U, ~0U, 0U) == 0;
}

} // namespace forkd
