// SPDX-License-Identifier: MIT
// The spawner's pid → connection id table, against std::unordered_map as the reference, and the
// not-inherited memory it lives in.
#include "daemon/core/not_inherited.hpp"
#include "daemon/spawner/pid_table.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace forkd {
namespace {

TEST(PidTable, SizedAtMostHalfFullAndAPowerOfTwo) {
    EXPECT_EQ(PidTable::entries_for(1), 16u);
    EXPECT_EQ(PidTable::entries_for(4096), 8192u);
    EXPECT_EQ(PidTable::entries_for(5000), 16384u);
    std::vector<PidTable::Entry> odd(12);
    EXPECT_THROW(PidTable{odd}, std::invalid_argument);
}

TEST(PidTable, InsertTakeAndLookUpById) {
    std::vector<PidTable::Entry> storage(PidTable::entries_for(4));
    PidTable table(storage);
    EXPECT_TRUE(table.insert({100, 1}));
    EXPECT_TRUE(table.insert({101, 2}));
    EXPECT_FALSE(table.insert({100, 3})) << "a pid is there once";
    EXPECT_FALSE(table.insert({0, 4}));
    EXPECT_FALSE(table.insert({-5, 4}));
    EXPECT_EQ(table.size(), 2u);
    ASSERT_NE(table.find(101), nullptr);
    EXPECT_EQ(table.find(101)->id, 2u);
    EXPECT_EQ(table.find(102), nullptr);
    EXPECT_EQ(table.find(0), nullptr);
    const auto taken = table.take(100);
    ASSERT_TRUE(taken);
    EXPECT_EQ(taken->id, 1u);
    EXPECT_FALSE(table.take(100));
    EXPECT_FALSE(table.take(0));
    EXPECT_EQ(table.size(), 1u);
}

TEST(PidTable, RefusesTheLastFreeEntrySoEveryProbeEnds) {
    std::vector<PidTable::Entry> storage(16);
    PidTable table(storage);
    for (pid_t pid = 1; pid <= 15; ++pid) EXPECT_TRUE(table.insert({pid, std::uint64_t(pid)}));
    EXPECT_FALSE(table.insert({16, 16}));
    EXPECT_FALSE(table.take(99)) << "a miss in a full table ends";
    EXPECT_EQ(table.find(99), nullptr);
    EXPECT_EQ(table.take(7)->id, 7u);
    EXPECT_TRUE(table.insert({16, 16}));
}

// Random inserts and removals in a small table, so that runs collide and wrap around its end:
// after every step the table and the reference agree on every pid.
TEST(PidTable, AgreesWithAReferenceMapUnderChurn) {
    std::vector<PidTable::Entry> storage(PidTable::entries_for(24));
    PidTable table(storage);
    std::unordered_map<pid_t, std::uint64_t> reference;
    std::mt19937 random(42);
    std::uniform_int_distribution<pid_t> pids(1, 200);
    for (std::uint64_t step = 1; step <= 20000; ++step) {
        const pid_t pid = pids(random);
        if (reference.count(pid)) {
            const auto taken = table.take(pid);
            ASSERT_TRUE(taken) << "step " << step;
            ASSERT_EQ(taken->id, reference[pid]) << "step " << step;
            reference.erase(pid);
        } else if (reference.size() < 24) {
            ASSERT_TRUE(table.insert({pid, step}));
            reference[pid] = step;
        }
        ASSERT_EQ(table.size(), reference.size());
    }
    for (pid_t pid = 1; pid <= 200; ++pid) {
        const auto it = reference.find(pid);
        const auto taken = table.take(pid);
        if (it == reference.end()) EXPECT_FALSE(taken) << pid;
        else EXPECT_TRUE(taken && taken->id == it->second) << pid;
    }
    EXPECT_EQ(table.size(), 0u);
}

TEST(PidTable, ForEachVisitsEveryEntryOnce) {
    std::vector<PidTable::Entry> storage(PidTable::entries_for(8));
    PidTable table(storage);
    for (pid_t pid = 10; pid < 18; ++pid) table.insert({pid, std::uint64_t(pid) * 2});
    std::unordered_map<pid_t, std::uint64_t> seen;
    table.for_each([&](const PidTable::Entry& e) { EXPECT_TRUE(seen.emplace(e.pid, e.id).second); });
    ASSERT_EQ(seen.size(), 8u);
    for (const auto& [pid, id] : seen) EXPECT_EQ(id, std::uint64_t(pid) * 2);
}

// The point of not-inherited memory: a child does not have it at all (so the parent's writes
// after a fork never copy a page a child shares).
TEST(NotInherited, ValueInitialisedAndAbsentInAChild) {
    NotInherited<PidTable::Entry> entries(1000);
    ASSERT_EQ(entries.items().size(), 1000u);
    for (const auto& e : entries.items()) ASSERT_EQ(e.pid, 0);
    entries.items()[999] = {42, 7};

    const long page = sysconf(_SC_PAGESIZE);
    auto* first_page = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(&*entries) & ~std::uintptr_t(page - 1));
    unsigned char residency = 0;
    ASSERT_EQ(mincore(first_page, 1, &residency), 0) << "mapped in the parent";
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) _exit(mincore(first_page, 1, &residency) != 0 && errno == ENOMEM ? 0 : 1);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child must not have the range";
    EXPECT_EQ(entries.items()[999].pid, 42);
}

} // namespace
} // namespace forkd
