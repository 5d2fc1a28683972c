// SPDX-License-Identifier: MIT
#pragma once
// What the fault tests share beyond the integration harness: a load of short echo clients that
// runs while a test hurts the daemon, a guard that never leaves a process stopped, a reader that
// keeps the test's notify socket from filling, and the checks every fault ends with (the
// accounting agrees with the process tree; RSS and descriptors stayed bounded).
#include "harness.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace forkd::fault {

using namespace forkd::test;

// Short echo connections from `clients` threads until stopped: connect, one round trip, close.
// A handshake or a reply may wait up to `patience` (behind a full backlog, a stopped process):
// that is waiting, not failing. Anything else (reset, EOF, wrong bytes) counts as failed.
class EchoLoad {
public:
    EchoLoad(std::uint16_t port, int clients, Millis patience = 30s);
    ~EchoLoad() { stop(); }
    EchoLoad(const EchoLoad&) = delete;
    EchoLoad& operator=(const EchoLoad&) = delete;
    void stop();  // waits for every client to finish its connection
    long served() const { return served_; }
    long failed() const { return failed_; }
    // Waits until `more` connections beyond the current count were served.
    bool progresses(long more, Millis timeout = 20s) const;

private:
    void run(std::uint16_t port, Millis patience);
    std::atomic<bool> stopping_{false};
    std::atomic<long> served_{0}, failed_{0};
    std::vector<std::thread> threads_;
};

// SIGSTOP now, SIGCONT on every way out (a failed assertion must not leave a process stopped).
class Stopped {
public:
    explicit Stopped(pid_t pid);
    ~Stopped() { resume(); }
    Stopped(const Stopped&) = delete;
    Stopped& operator=(const Stopped&) = delete;
    void resume();
private:
    pid_t pid_;
};

// Reads the daemon's notifications every 200 ms in the background. The harness's notify socket
// holds ten datagrams and the master sends STATUS= about once a second under load, so a test
// longer than that must read it, as systemd would (a reader that never reads is issue 12 item
// 13's own test). The test must not call the Daemon's notification functions meanwhile.
class NotifyReader {
public:
    explicit NotifyReader(Daemon& daemon);
    ~NotifyReader();
    NotifyReader(const NotifyReader&) = delete;
    NotifyReader& operator=(const NotifyReader&) = delete;
private:
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

// The numbers the checks compare, from forkctl --json status: -1 where forkctl failed.
struct Counts {
    long active = -1, accepted = -1, completed = -1, killed = -1, failed = -1;
    long ended() const { return completed + killed + failed; }
};
Counts counts(const Daemon& daemon);

// Waits until the accounting settles on `expected_active` connections and agrees with the
// process tree: status.active, the live handlers (children of forkd-spawner and of the master)
// and accepted - (completed + killed + failed) are all that number. "" when they are; what
// they were at the timeout otherwise.
std::string accounting_mismatch(const Daemon& daemon, long expected_active, Millis timeout = 15s);

// RSS and descriptor count of one process, for before/after comparisons.
struct Footprint {
    std::size_t rss_kb = 0, fds = 0;
};
Footprint footprint(pid_t pid);
std::string describe(const Footprint& f);
// RSS growth from `before` to `after` within limit_kb (not asserted in sanitizer builds).
void expect_rss_bounded(const Footprint& before, const Footprint& after, std::size_t limit_kb,
                        const std::string& who);
// The fd count comes back to `before` (descriptors freed asynchronously: waits for it).
void expect_fds_back(pid_t pid, std::size_t before, const std::string& who, Millis timeout = 10s);

// One raw request on the control socket; the reply line (or "" if none came).
std::string control_request(const Daemon& daemon, const std::string& request, Millis timeout = 5s);

// Raises this process's soft RLIMIT_NOFILE to the hard limit (tests that hold many clients).
void raise_nofile_limit();

} // namespace forkd::fault
