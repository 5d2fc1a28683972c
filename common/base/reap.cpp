// SPDX-License-Identifier: MIT
#include "common/base/reap.hpp"

#include <sys/wait.h>

#include <cerrno>

namespace forkd {

int reap(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

} // namespace forkd
