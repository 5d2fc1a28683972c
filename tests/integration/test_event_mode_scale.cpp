// SPDX-License-Identifier: MIT
// 5,000 concurrent event-mode connections held at once, the counter exact, then all closed.
// The clients' descriptors are spread over two helper processes (a process's own limit here is
// far above that, but the test must not depend on it): each forks, connects its share, reports,
// and holds them until told to go.
#include "event_mode_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

using namespace forkd::test;
using forkd::UniqueFd;

namespace {

constexpr int kClients = 5000;
constexpr int kHolders = 2;

// A child that connects `count` clients (each checked by one byte echoed), writes one byte to
// `report`, then holds them until `release` closes; exits 0 on success.
pid_t start_holder(std::uint16_t port, int count, const int (&report)[2], const int (&release)[2]) {
    const pid_t pid = fork();
    if (pid != 0) return pid;
    // Only the test may hold the release pipe's write end: its close is the signal to go.
    close(release[1]);
    close(report[0]);
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, rlim_t(count) + 64);
    setrlimit(RLIMIT_NOFILE, &limit);
    std::vector<UniqueFd> clients;
    clients.reserve(std::size_t(count));
    for (int i = 0; i < count; ++i) {
        UniqueFd fd = connect_tcp(port, "127.0.0.1", 10s);
        if (!fd.valid() || !send_all(fd.get(), "x")) _exit(2);
        clients.push_back(std::move(fd));
    }
    for (auto& fd : clients)
        if (read_n(fd.get(), 1, 5s) != "x") _exit(3);
    char byte = 'r';
    if (write(report[1], &byte, 1) != 1) _exit(4);
    char sink;
    (void)read(release[0], &sink, 1);  // EOF: the test says go
    _exit(0);
}

} // namespace

TEST(EventModeScale, FiveThousandConcurrentConnectionsWithAnExactCount) {
    Daemon d(event_config({"workers = 2", "max-connections = 10000"}));
    int report[2], release[2];
    ASSERT_EQ(pipe(report), 0);
    ASSERT_EQ(pipe(release), 0);
    std::vector<pid_t> holders;
    for (int i = 0; i < kHolders; ++i) holders.push_back(start_holder(d.port(), kClients / kHolders, report, release));
    close(report[1]);
    close(release[0]);
    int ready = 0;
    char byte;
    // Every holder writes its byte or exits (then its end of the pipe closes): read ends.
    while (ready < kHolders && read(report[0], &byte, 1) == 1) ++ready;
    ASSERT_EQ(ready, kHolders) << "a holder could not connect its share:\n" << d.log().substr(0, 2000);
    EXPECT_TRUE(eventually([&] { return active_of(d) == kClients; }, 5s)) << active_of(d);
    auto status = status_json(d);
    ASSERT_TRUE(status.ok());
    long summed = 0;
    for (const auto& w : (*status)["workers"]) summed += w["active"].get<long>();
    EXPECT_EQ(summed, kClients);
    EXPECT_EQ((*status)["totals"]["accepted"], kClients);

    close(release[1]);
    for (pid_t pid : holders) {
        int st = -1;
        const bool exited = eventually([&] { return waitpid(pid, &st, WNOHANG) == pid; }, 20s);
        if (!exited) {
            ::kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        EXPECT_TRUE(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    }
    close(report[0]);
    EXPECT_TRUE(eventually([&] { return active_of(d) == 0; }, 10s)) << active_of(d);
    status = status_json(d);
    EXPECT_EQ((*status)["totals"]["completed"], kClients) << status->dump();
}
