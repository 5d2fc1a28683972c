// SPDX-License-Identifier: MIT
#pragma once
// How a handler ended, as logs print it: "exit:0", "exit:127", "signal:KILL".
#include <string>

namespace forkd {

std::string describe_wait_status(int status);
bool ended_cleanly(int status);  // exited with 0

} // namespace forkd
