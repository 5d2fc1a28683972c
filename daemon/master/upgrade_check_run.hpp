// SPDX-License-Identifier: MIT
#pragma once
// The new binary's --upgrade-check (daemon/upgrade/upgrade_check.hpp) while the master's loop goes
// on: its output is read as it comes, a timer kills it past its time, and the verdict is given
// when the master reaps it. Reaping stays with the master's waitpid(-1) loop (a child source of
// sd-event would race it for the exit status), which hands the status to reaped().
#include "common/base/error.hpp"
#include "daemon/event_loop/sd_event_ptr.hpp"
#include "daemon/upgrade/upgrade_check.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace forkd {

class UpgradeCheckRun {
public:
    // Starts BINARY --upgrade-check VERSION ARGV...; the error if it cannot even start.
    static Result<std::unique_ptr<UpgradeCheckRun>> start(sd_event* event, const std::string& binary,
                                                          const std::vector<std::string>& argv,
                                                          std::uint32_t version,
                                                          std::chrono::milliseconds timeout);
    UpgradeCheckRun(std::string binary, upgrade::CheckChild child, std::chrono::milliseconds timeout);
    ~UpgradeCheckRun();
    UpgradeCheckRun(const UpgradeCheckRun&) = delete;
    UpgradeCheckRun& operator=(const UpgradeCheckRun&) = delete;

    pid_t pid() const { return child_.pid; }
    bool is(pid_t pid) const { return pid == child_.pid; }
    // Nobody waits for the verdict any more (a stop): the check is killed, and still reaped.
    void cancel();
    bool cancelled() const { return cancelled_; }
    // The master reaped it: the new binary's version, or why it cannot take over.
    Result<std::string> reaped(int wait_status);

private:
    Status watch(sd_event* event);
    void read_output(int fd);
    void time_out();

    std::string binary_;
    upgrade::CheckChild child_;
    std::chrono::milliseconds timeout_;
    std::string out_text_, err_text_;
    EventSourcePtr out_source_, err_source_, timer_;
    bool timed_out_ = false, cancelled_ = false;
};

} // namespace forkd
