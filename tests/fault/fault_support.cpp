// SPDX-License-Identifier: MIT
#include "fault_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>

#include <sstream>

namespace forkd::fault {

EchoLoad::EchoLoad(std::uint16_t port, int clients, Millis patience) {
    for (int i = 0; i < clients; ++i)
        threads_.emplace_back([this, port, patience] { run(port, patience); });
}

void EchoLoad::stop() {
    stopping_ = true;
    for (auto& thread : threads_)
        if (thread.joinable()) thread.join();
}

bool EchoLoad::progresses(long more, Millis timeout) const {
    const long target = served_ + more;
    return eventually([&] { return served_ >= target; }, timeout);
}

void EchoLoad::run(std::uint16_t port, Millis patience) {
    while (!stopping_) {
        auto fd = connect_tcp(port, "127.0.0.1", patience);
        if (fd.valid() && echo_roundtrip(fd.get(), "ping\n", patience)) ++served_;
        else ++failed_;
    }
}

Stopped::Stopped(pid_t pid) : pid_(pid) { ::kill(pid_, SIGSTOP); }

void Stopped::resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
    pid_ = -1;
}

NotifyReader::NotifyReader(Daemon& daemon)
    : thread_([this, &daemon] {
          while (!stopping_) {
              daemon.notifications();
              std::this_thread::sleep_for(200ms);
          }
      }) {}

NotifyReader::~NotifyReader() {
    stopping_ = true;
    thread_.join();
}

Counts counts(const Daemon& daemon) {
    Counts c;
    auto status = status_json(daemon);
    if (!status) return c;
    auto number = [&](const char* pointer) {
        return status->value(nlohmann::json::json_pointer(pointer), -1L);
    };
    c.active = number("/active");
    c.accepted = number("/totals/accepted");
    c.completed = number("/totals/completed");
    c.killed = number("/totals/killed");
    c.failed = number("/totals/failed");
    return c;
}

std::string accounting_mismatch(const Daemon& daemon, long expected_active, Millis timeout) {
    Counts c;
    std::size_t handlers = 0;
    const bool agreed = eventually([&] {
        c = counts(daemon);
        handlers = daemon.children().size();
        return c.active == expected_active && long(handlers) == expected_active &&
               c.accepted - c.ended() == expected_active;
    }, timeout);
    if (agreed) return "";
    std::ostringstream why;
    why << "expected " << expected_active << " active; status.active=" << c.active
        << ", live handlers=" << handlers << ", accepted=" << c.accepted
        << " completed=" << c.completed << " killed=" << c.killed << " failed=" << c.failed;
    return why.str();
}

Footprint footprint(pid_t pid) { return {proc_rss_kb(pid), proc_fd_count(pid)}; }

std::string describe(const Footprint& f) {
    return std::to_string(f.rss_kb) + " kB RSS, " + std::to_string(f.fds) + " fds";
}

void expect_rss_bounded(const Footprint& before, const Footprint& after, std::size_t limit_kb,
                        const std::string& who) {
    if (kSanitized) return;  // see kSanitized
    EXPECT_LE(after.rss_kb, before.rss_kb + limit_kb)
        << who << " grew from " << describe(before) << " to " << describe(after);
}

void expect_fds_back(pid_t pid, std::size_t before, const std::string& who, Millis timeout) {
    std::size_t now = 0;
    EXPECT_TRUE(eventually([&] { return (now = proc_fd_count(pid)) <= before; }, timeout))
        << who << " holds " << now << " fds, " << before << " before: "
        << ::testing::PrintToString(proc_fd_targets(pid));
}

std::string control_request(const Daemon& daemon, const std::string& request, Millis timeout) {
    auto fd = connect_unix(daemon.control_socket());
    if (!fd.valid() || !send_all(fd.get(), request)) return "";
    return read_until_eof(fd.get(), timeout);
}

void raise_nofile_limit() {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
}

} // namespace forkd::fault
