// SPDX-License-Identifier: MIT
#pragma once
// Before it replaces itself, the old image asks the new binary whether it can take over:
//   BINARY --upgrade-check VERSION ARGS...
// (ARGS: the daemon's own command line) loads the configuration exactly as a start would, checks
// that it reads state record VERSION, prints "forkd NEWVERSION" and exits 0; otherwise it prints
// the reason on stderr and exits 1. A binary that is missing, not executable, corrupt, hangs or
// crashes fails the check too, and the upgrade is refused with that reason.
#include "common/base/error.hpp"
#include "common/base/unique_fd.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace forkd::upgrade {

constexpr const char* check_option = "--upgrade-check";
constexpr std::chrono::milliseconds check_timeout{10000};

// The old image's side, in steps its loop drives without waiting (daemon/master/upgrade_check_run):
// start the check, read what it prints as it comes (its pipes are non-blocking), reap it with
// the loop's own SIGCHLD handling, then judge. A check past its time is killed and judged
// check_timed_out.
struct CheckChild {
    pid_t pid = -1;
    UniqueFd out, err;  // the read ends of its stdout and stderr, O_NONBLOCK
};
Result<CheckChild> start_upgrade_check(const std::string& binary, const std::vector<std::string>& argv,
                                       std::uint32_t version);
// Appends what FD holds now (at most 64 KiB in all are kept); false once it is at EOF or broken.
bool read_check_output(int fd, std::string& text);
// From how it ended and what it printed: the new binary's version ("0.2.0"), or why it cannot
// take over.
Result<std::string> judge_upgrade_check(const std::string& binary, int wait_status,
                                        const std::string& out, const std::string& err);
Error check_timed_out(const std::string& binary, std::chrono::milliseconds timeout);

// The new binary's side: argv is "PROG --upgrade-check VERSION ARGS..." → VERSION and
// "PROG ARGS..." (to parse as a normal command line); nullopt when it is not the check mode.
// A VERSION that is no number reads as 0, which no build reads.
struct CheckMode {
    std::uint32_t version = 0;
    std::vector<std::string> argv;
};
std::optional<CheckMode> parse_check_mode(int argc, const char* const* argv);

} // namespace forkd::upgrade
