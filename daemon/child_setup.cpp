#include "daemon/child_setup.hpp"

#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace forkd {

void reset_signal_state() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sigaction(sig, &dfl, nullptr);  // EINVAL for the few reserved ones: harmless
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
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
