// SPDX-License-Identifier: MIT
#include "daemon/core/exit_status.hpp"

#include <sys/wait.h>
#include <string.h>

namespace forkd {

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return "exit:" + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const char* abbrev = sigabbrev_np(WTERMSIG(status));
        return std::string("signal:") + (abbrev ? abbrev : std::to_string(WTERMSIG(status)).c_str());
    }
    return "unknown:" + std::to_string(status);
}

bool ended_cleanly(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

} // namespace forkd
