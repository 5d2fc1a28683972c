// SPDX-License-Identifier: MIT
// A stalled master (SIGSTOP here; a slow disk or a blocked notify in real life) under a load of
// short built-in connections: forkd-spawner frees the slots of the handlers it reaps by itself,
// and when it has no room left (no slot, or no room for the reports the master owes it a read
// of) it stops accepting, so clients wait in the backlog as overload = wait promises. No client
// may be reset or refused.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <string>
#include <thread>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

// Short echo connections in a loop until told to stop; counts what was served and what failed.
// The handshake may wait long behind a full backlog while the master is stopped: that is
// waiting, not failing.
class EchoLoad {
public:
    EchoLoad(std::uint16_t port, int clients) {
        for (int i = 0; i < clients; ++i) threads_.emplace_back([this, port] { run(port); });
    }
    ~EchoLoad() { stop(); }
    void stop() {
        stopping_ = true;
        for (auto& thread : threads_)
            if (thread.joinable()) thread.join();
    }
    long served() const { return served_; }
    long failed() const { return failed_; }

private:
    void run(std::uint16_t port) {
        while (!stopping_) {
            auto fd = connect_tcp(port, "127.0.0.1", 30s);
            if (fd.valid() && echo_roundtrip(fd.get(), "ping\n", 30s)) ++served_;
            else ++failed_;
        }
    }
    std::atomic<bool> stopping_{false};
    std::atomic<long> served_{0}, failed_{0};
    std::vector<std::thread> threads_;
};

// SIGCONT on every way out, so that a failed assertion does not leave the master stopped.
class Stopped {
public:
    explicit Stopped(pid_t pid) : pid_(pid) { ::kill(pid_, SIGSTOP); }
    ~Stopped() { resume(); }
    void resume() {
        if (pid_ > 0) ::kill(pid_, SIGCONT);
        pid_ = -1;
    }
private:
    pid_t pid_;
};

// Waits while `load` makes progress; true once it has made none for `quiet`.
bool wait_until_quiet(const EchoLoad& load, Millis quiet, Millis timeout) {
    long last = load.served();
    auto last_change = std::chrono::steady_clock::now();
    return eventually([&] {
        if (load.served() != last) {
            last = load.served();
            last_change = std::chrono::steady_clock::now();
        }
        return std::chrono::steady_clock::now() - last_change >= quiet;
    }, timeout);
}

} // namespace

TEST(MasterStall, StoppedMasterMakesTheSpawnerWaitNeverRefuse) {
    Daemon d(config({"max-connections = 4", "overload = wait"}));
    const pid_t master = std::stoi(read_file(d.pidfile()));
    ASSERT_EQ(master, d.pid());
    const auto status = status_json(d);
    ASSERT_TRUE(status);
    const long capacity = (*status)["capacity"].get<long>();

    EchoLoad load(d.port(), 8);
    ASSERT_TRUE(eventually([&] { return load.served() >= 100; }, 20s)) << d.log();
    {
        Stopped stopped(master);
        const long before = load.served();
        // More connections than the scoreboard has slots pass while the master sleeps: the
        // spawner frees the slots itself. Then it holds back (its reports wait for the master)
        // and clients queue in the backlog instead of being reset.
        const bool held_back = wait_until_quiet(load, 1500ms, 25s);
        const long during = load.served() - before;
        EXPECT_GT(during, capacity) << "slots were not reused while the master was stopped";
        EXPECT_TRUE(held_back) << "served " << during << " with the master stopped and never waited";
        EXPECT_EQ(load.failed(), 0) << "clients reset or refused while the master was stopped";
        stopped.resume();
    }
    const long resumed_at = load.served();
    EXPECT_TRUE(eventually([&] { return load.served() > resumed_at + 100; }, 20s))
        << "no progress after SIGCONT\n" << d.log();
    load.stop();
    EXPECT_EQ(load.failed(), 0) << "clients reset or refused";

    const auto after = status_json(d);
    ASSERT_TRUE(after);
    EXPECT_EQ((*after)["refused"]["limit"].get<long>(), 0) << after->dump();
    EXPECT_TRUE(eventually([&] {
        const auto now = status_json(d);
        return now && (*now)["active"].get<long>() == 0 &&
               (*now)["totals"]["accepted"].get<long>() == load.served();
    }, 10s)) << status_json(d)->dump() << " served " << load.served();
}
