// SPDX-License-Identifier: MIT
#include "daemon/master/upgrade_check_run.hpp"

#include "daemon/event_loop/event_sources.hpp"

#include <signal.h>

namespace forkd {

Result<std::unique_ptr<UpgradeCheckRun>> UpgradeCheckRun::start(sd_event* event, const std::string& binary,
                                                                const std::vector<std::string>& argv,
                                                                std::uint32_t version,
                                                                std::chrono::milliseconds timeout) {
    auto child = upgrade::start_upgrade_check(binary, argv, version);
    if (!child) return child.error();
    auto run = std::make_unique<UpgradeCheckRun>(binary, std::move(*child), timeout);
    if (Status watched = run->watch(event); !watched) return watched.error();  // killed; reaped by the master
    return run;
}

UpgradeCheckRun::UpgradeCheckRun(std::string binary, upgrade::CheckChild child, std::chrono::milliseconds timeout)
    : binary_(std::move(binary)), child_(std::move(child)), timeout_(timeout) {}

// Destroyed before it was reaped only on the way out: it must not outlive its master.
UpgradeCheckRun::~UpgradeCheckRun() {
    if (child_.pid > 0) ::kill(child_.pid, SIGKILL);
}

Status UpgradeCheckRun::watch(sd_event* event) {
    for (auto [fd, source] : {std::pair{child_.out.get(), &out_source_}, std::pair{child_.err.get(), &err_source_}}) {
        auto io = event_loop::add_io(event, fd, EPOLLIN, "upgrade-check-output", [this, fd] { read_output(fd); });
        if (!io) return io.error();
        *source = std::move(*io);
    }
    auto timer = event_loop::add_timer(event, std::uint64_t(timeout_.count()) * 1000, "upgrade-check-timeout",
                                       [this] { time_out(); });
    if (!timer) return timer.error();
    timer_ = std::move(*timer);
    return Status::success();
}

void UpgradeCheckRun::read_output(int fd) {
    const bool stdout_pipe = fd == child_.out.get();
    if (upgrade::read_check_output(fd, stdout_pipe ? out_text_ : err_text_)) return;
    (stdout_pipe ? out_source_ : err_source_).reset();  // at EOF: nothing more to wait for there
}

void UpgradeCheckRun::time_out() {
    timer_.reset();
    timed_out_ = true;
    ::kill(child_.pid, SIGKILL);
}

void UpgradeCheckRun::cancel() {
    cancelled_ = true;
    ::kill(child_.pid, SIGKILL);
}

Result<std::string> UpgradeCheckRun::reaped(int wait_status) {
    child_.pid = -1;
    // All it wrote before it ended is in the pipes by now.
    (void)upgrade::read_check_output(child_.out.get(), out_text_);
    (void)upgrade::read_check_output(child_.err.get(), err_text_);
    if (timed_out_) return upgrade::check_timed_out(binary_, timeout_);
    return upgrade::judge_upgrade_check(binary_, wait_status, out_text_, err_text_);
}

} // namespace forkd
