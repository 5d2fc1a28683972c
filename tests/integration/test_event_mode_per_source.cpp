// SPDX-License-Identifier: MIT
// max-per-source and max-per-source-rate hold exactly across event-mode workers: the count and
// the buckets are the scoreboard's, one for every worker. The workers accept from one shared
// listening socket, and the kernel does not promise to spread clients over them, so the tests
// decide which worker accepts: a worker held stopped (SIGSTOP) accepts nothing, and the other
// takes every client meanwhile.
#include "admission_support.hpp"
#include "event_mode_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

// Worker `pid` stopped for this scope (continued at its end, whatever the test did meanwhile).
class StoppedWorker {
public:
    explicit StoppedWorker(pid_t pid) : pid_(pid) { ::kill(pid_, SIGSTOP); }
    ~StoppedWorker() { ::kill(pid_, SIGCONT); }
    StoppedWorker(const StoppedWorker&) = delete;
    StoppedWorker& operator=(const StoppedWorker&) = delete;

    // Whether it has stopped (state T in /proc): only then is every client the other's.
    bool stopped() const {
        std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        const auto end_of_name = text.rfind(')');
        return end_of_name != std::string::npos && text.size() > end_of_name + 2 && text[end_of_name + 2] == 'T';
    }

private:
    pid_t pid_;
};

std::vector<pid_t> two_workers(const Daemon& d) {
    std::vector<pid_t> pids;
    eventually([&] {
        pids = worker_pids(d);
        return pids.size() == 2 && pids[0] > 0 && pids[1] > 0;
    });
    return pids;
}

std::set<pid_t> serving_pids(const Daemon& d) {
    std::set<pid_t> pids;
    for (const auto& row : list_json(d)) pids.insert(pid_t(row["pid"].get<long>()));
    return pids;
}

// `clients` connections from 127.0.0.1 while worker `stopped_pid` is stopped (the other accepts);
// the served ones are moved to `held`. Returns how many were served.
long connect_through(const Daemon& d, pid_t stopped_pid, int clients, std::vector<UniqueFd>& held) {
    StoppedWorker stopped(stopped_pid);
    if (!eventually([&] { return stopped.stopped(); }, 3s)) return -1;
    std::vector<UniqueFd> fds;
    for (int i = 0; i < clients; ++i) fds.push_back(connect_tcp(d.port()));
    long served = 0;
    for (auto& fd : fds) {
        if (!fd.valid() || !echo_roundtrip(fd.get(), "hello", 3s)) continue;
        ++served;
        held.push_back(std::move(fd));
    }
    return served;
}

// Clients of 127.0.0.1 split over the two workers: two through the second (the first stopped),
// then `more` through the first (the second stopped). The served ones are in `held`; returns how
// many of the `more` were served, -1 if the workers could not be told apart.
struct Split {
    std::vector<pid_t> workers;
    std::vector<UniqueFd> held;
    long served_later = -1;
};

Split split_over_workers(const Daemon& d, int more) {
    Split split;
    split.workers = two_workers(d);
    if (split.workers.size() != 2 || connect_through(d, split.workers[0], 2, split.held) != 2) return split;
    split.served_later = connect_through(d, split.workers[1], more, split.held);
    return split;
}

} // namespace

// Ten clients of one source, split over two workers: exactly three served, seven refused.
TEST(EventModePerSource, MaxPerSourceIsOneCountForEveryWorker) {
    Daemon d(event_config({"workers = 2", "max-per-source = 3"}));
    Split split = split_over_workers(d, 8);
    std::vector<UniqueFd>& held = split.held;
    ASSERT_EQ(split.served_later, 1) << "the other worker went beyond max-per-source\n" << d.log();
    ASSERT_TRUE(eventually([&] { return refused(d, "per_source") == 7; }, 3s)) << d.log();
    EXPECT_EQ(active_of(d), 3);
    EXPECT_EQ(serving_pids(d), (std::set<pid_t>{split.workers[0], split.workers[1]})) << "both workers serve it";
    EXPECT_NE(d.refusal_line("127.0.0.1").find("limit=3"), std::string::npos) << d.log();

    // A connection that ends gives its count back, whichever worker accepts the next one.
    held.erase(held.begin());
    ASSERT_TRUE(eventually([&] { return active_of(d) == 2; }, 3s)) << d.log();
    auto again = connect_tcp(d.port());
    EXPECT_TRUE(echo_roundtrip(again.get(), "again")) << d.log();
    for (auto& fd : held) EXPECT_TRUE(echo_roundtrip(fd.get(), "still served"));
}

// One bucket of three for the source, whichever worker takes the tokens (a minute's refill: no
// token comes back during the test).
TEST(EventModePerSource, MaxPerSourceRateIsOneBucketForEveryWorker) {
    Daemon d(event_config({"workers = 2", "max-per-source-rate = 3/60"}));
    const Split split = split_over_workers(d, 6);
    ASSERT_EQ(split.served_later, 1) << "the other worker had a bucket of its own\n" << d.log();
    ASSERT_TRUE(eventually([&] { return refused(d, "per_source_rate") == 5; }, 3s)) << d.log();
    EXPECT_EQ(serving_pids(d), (std::set<pid_t>{split.workers[0], split.workers[1]}));
    auto other = from(d, "127.0.0.2");
    EXPECT_TRUE(echo_roundtrip(other.get(), "another source")) << d.log();
}
