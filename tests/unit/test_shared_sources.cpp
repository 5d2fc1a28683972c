// SPDX-License-Identifier: MIT
// The scoreboard's per-source tables: one max-per-source count and one set of per-source rate
// buckets that every accepting process shares (daemon/core/admitted_claim.hpp), exact across
// claims, releases and reaps, across processes, and after a holder was SIGKILLed in the section.
#include "daemon/core/admitted_claim.hpp"
#include "daemon/core/scoreboard.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <random>
#include <utility>
#include <vector>

namespace forkd {
namespace {

constexpr std::int64_t t0 = 1'000'000'000'000;
constexpr std::int64_t ms = 1'000'000;

SourceKey source(const char* address) { return SourceKey::of_ip(*IpAddress::parse(address)); }

RuntimeLimits per_source_limits(unsigned max_per_source, Rate rate = {}) {
    RuntimeLimits limits;
    limits.max_connections = 0;
    limits.max_per_source = max_per_source;
    limits.max_per_source_rate = rate;
    return limits;
}

// An acceptor's gate over the board's shared buckets, as forkd-spawner and each worker keep one.
struct Acceptor {
    Scoreboard& board;
    AdmissionGate gate{board.source_rate_storage(), board.source_rate_table_rate()};
    Acceptor(Scoreboard& b, const RuntimeLimits& limits) : board(b) { set_shared_limits(board, gate, limits); }
    AdmittedClaim claim(std::uint64_t id, const SourceKey& key, std::int64_t now = t0) {
        return claim_admitted(board, gate, {nullptr, key}, id, "peer", now);
    }
};

// Runs body in a child that dies with the test; returns its wait status.
template <typename Body>
int in_child(Body&& body) {
    const pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        body();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

TEST(SharedSources, ASlotCountsForItsSourceWhileItCountsForActive) {
    Scoreboard board(8);
    const SourceKey a = source("192.0.2.1"), b = source("192.0.2.2");
    std::vector<std::uint32_t> slots;
    for (std::uint64_t id = 1; id <= 3; ++id) {
        const Scoreboard::Lock lock(board);
        slots.push_back(*board.claim(lock, id, "a", a));
    }
    {
        const Scoreboard::Lock lock(board);
        (void)board.claim(lock, 4, "b", b);
    }
    (void)board.claim(5, "no source");
    {
        const Scoreboard::Lock lock(board);
        (void)board.claim(lock, 6, "unix", SourceKey::of_uid(1000));
    }
    EXPECT_EQ(board.from_source(SourceKey::of_uid(1000)), 1u);
    EXPECT_EQ(board.from_source(SourceKey::of_uid(1001)), 0u) << "each uid is a source of its own";
    EXPECT_EQ(board.from_source(a), 3u);
    EXPECT_EQ(board.from_source(b), 1u);
    EXPECT_EQ(board.from_source(SourceKey{}), 0u);
    // A closing slot stops counting for its source when it stops counting for active.
    board.release_from_child(slots[0]);
    EXPECT_EQ(board.from_source(a), 2u);
    board.release_from_child(slots[0]);
    board.reap(slots[0]);
    EXPECT_EQ(board.from_source(a), 2u) << "given back once";
    board.reap(slots[1]);
    EXPECT_EQ(board.from_source(a), 1u);
    EXPECT_EQ(board.recount(), 4u);
    EXPECT_EQ(board.from_source(a), 1u) << "a recount rebuilds the same count";
    board.reap(slots[2]);
    EXPECT_EQ(board.from_source(a), 0u);
}

TEST(SharedSources, MaxPerSourceHoldsAcrossAcceptorsAndProcesses) {
    Scoreboard board(16);
    const RuntimeLimits limits = per_source_limits(3);
    Acceptor first(board, limits), second(board, limits);
    const SourceKey a = source("127.0.0.1");
    std::vector<std::uint32_t> held;
    unsigned refused = 0;
    for (std::uint64_t id = 1; id <= 10; ++id) {
        const AdmittedClaim c = (id % 2 ? first : second).claim(id, a);
        if (c.decision.admitted()) {
            held.push_back(*c.slot);
            continue;
        }
        EXPECT_EQ(c.decision.refusal, Refusal::per_source);
        ++refused;
    }
    EXPECT_EQ(held.size(), 3u);
    EXPECT_EQ(refused, 7u);
    EXPECT_TRUE(first.claim(20, source("127.0.0.2")).decision.admitted()) << "another source";
    // A third acceptor in another process (a worker) sees the same count.
    const int status = in_child([&] {
        Acceptor other(board, limits);
        _exit(other.claim(30, a).decision.refusal == Refusal::per_source ? 0 : 1);
    });
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    board.reap(held.back());
    EXPECT_TRUE(second.claim(40, a).decision.admitted()) << "a closed connection frees its count";
}

// A holder SIGKILLed after every step of the release section: the repair rebuilds the source's
// count from the slots, exactly as it rebuilds active.
TEST(SharedSources, AHolderKilledInsideTheSectionLeavesTheCountExact) {
    Scoreboard board(4);
    const SourceKey a = source("198.51.100.7");
    std::optional<std::uint32_t> bystander;
    {
        const Scoreboard::Lock lock(board);
        bystander = board.claim(lock, 1, "bystander", a);
    }
    for (unsigned steps = 0; steps <= Scoreboard::release_steps; ++steps) {
        SCOPED_TRACE("steps " + std::to_string(steps));
        std::optional<std::uint32_t> slot;
        {
            const Scoreboard::Lock lock(board);
            slot = board.claim(lock, 2 + steps, "victim", a);
        }
        ASSERT_TRUE(slot);
        ASSERT_EQ(board.from_source(a), 2u);
        const std::uint64_t repairs = board.repairs();
        const int status = in_child([&] { board.test_die_inside_release(*slot, steps); });
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
        EXPECT_EQ(board.from_source(a), steps == 0 ? 2u : 1u) << "step 1 is the commit point";
        EXPECT_EQ(board.repairs(), repairs + 1);
        board.reap(*slot);
        EXPECT_EQ(board.from_source(a), 1u);
    }
    board.reap(*bystander);
    EXPECT_EQ(board.from_source(a), 0u);
}

// Children flip their slots between released and counted (one section, a thousand times each)
// and are SIGKILLed at random instants, many inside it: the source's count must equal the slots
// that still count, and reaping them all must bring it to zero.
TEST(SharedSources, ChildrenKilledAtRandomLeaveTheSourceCountExact) {
    constexpr int kChildren = 4;
    Scoreboard board(kChildren + 1);
    const SourceKey a = source("192.0.2.77");
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> delay_us(0, 2000);
    for (int round = 0; round < 10; ++round) {
        std::vector<std::pair<pid_t, std::uint32_t>> children;
        for (int i = 0; i < kChildren; ++i) {
            std::optional<std::uint32_t> slot;
            {
                const Scoreboard::Lock lock(board);
                slot = board.claim(lock, std::uint64_t(round * kChildren + i), "child", a);
            }
            ASSERT_TRUE(slot);
            const pid_t pid = fork();
            if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                for (;;) board.test_cycle_release(*slot, 1000);
            }
            ASSERT_GT(pid, 0);
            children.emplace_back(pid, *slot);
        }
        for (const auto& [pid, slot] : children) {
            usleep(useconds_t(delay_us(random)));
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
        const std::uint32_t counted = board.recount();
        EXPECT_EQ(board.from_source(a), counted) << "round " << round;
        for (const auto& [pid, slot] : children) board.reap(slot);
        EXPECT_EQ(board.from_source(a), 0u) << "round " << round;
        EXPECT_EQ(board.active(), 0u);
    }
    EXPECT_GT(board.repairs(), 0u) << "no kill landed inside the section: this proved nothing";
}

TEST(SharedSources, PerSourceRateBucketsAreSharedAndARepairRefillsThem) {
    Scoreboard board(16);
    const RuntimeLimits limits = per_source_limits(0, Rate{3, 60});
    Acceptor first(board, limits), second(board, limits);
    const SourceKey a = source("203.0.113.5");
    unsigned admitted = 0;
    for (std::uint64_t id = 1; id <= 8; ++id) {
        const AdmittedClaim c = (id % 2 ? first : second).claim(id, a, t0 + std::int64_t(id) * ms);
        if (c.decision.admitted()) ++admitted;
        else EXPECT_EQ(c.decision.refusal, Refusal::per_source_rate);
    }
    EXPECT_EQ(admitted, 3u) << "one bucket of 3 between both acceptors";
    // Another acceptor configured with the same rate (a worker that starts later) keeps the state.
    Acceptor third(board, limits);
    EXPECT_EQ(third.claim(9, a, t0 + 10 * ms).decision.refusal, Refusal::per_source_rate);
    // A new rate starts full.
    set_shared_limits(board, first.gate, per_source_limits(0, Rate{4, 60}));
    EXPECT_TRUE(first.claim(10, a, t0 + 11 * ms).decision.admitted());
    // A holder killed inside the section: the repair resets every bucket to full.
    set_shared_limits(board, second.gate, per_source_limits(0, Rate{4, 60}));
    while (second.claim(11, a, t0 + 12 * ms).decision.admitted()) {
    }
    const auto victim = board.claim(12, "victim");
    ASSERT_TRUE(victim);
    (void)in_child([&] { board.test_die_inside_release(*victim, 1); });
    EXPECT_TRUE(second.claim(13, a, t0 + 13 * ms).decision.admitted());
    EXPECT_EQ(board.repairs(), 1u);
}

TEST(SharedSources, AScoreboardOfAnotherLayoutIsRefused) {
    Scoreboard board(4);
    const std::uint64_t other = 0x1234;
    ASSERT_EQ(pwrite(board.memfd(), &other, sizeof other, 0), ssize_t(sizeof other));
    EXPECT_THROW(Scoreboard{UniqueFd(dup(board.memfd()))}, std::invalid_argument);
}

} // namespace
} // namespace forkd
