// SPDX-License-Identifier: MIT
// The scoreboard across real processes: forked children share the mapping, release their slots,
// and get SIGKILLed inside the critical section; the master must never deadlock and the counter
// must stay exact.
#include "daemon/core/scoreboard.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>

namespace forkd {
namespace {

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Every child this test forks, killed and reaped at the latest when the test ends.
class Children {
public:
    Children() = default;
    Children(const Children&) = delete;
    Children& operator=(const Children&) = delete;
    ~Children() {
        for (pid_t pid : live_) kill(pid, SIGKILL);
        for (pid_t pid : live_) waitpid(pid, nullptr, 0);
    }

    // Runs body in a child that dies with the test process; the child never returns into gtest.
    template <typename Body>
    pid_t spawn(Body&& body) {
        const pid_t parent = getpid();
        const pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(99);
            body();
            _exit(0);
        }
        if (pid > 0) live_.insert(pid);
        return pid;
    }

    // waitpid for one child (or any when pid = -1); returns the pid and its wait status.
    std::pair<pid_t, int> wait(pid_t pid = -1) {
        int status = 0;
        pid_t done;
        do done = waitpid(pid, &status, 0);
        while (done < 0 && errno == EINTR);
        if (done > 0) live_.erase(done);
        return {done, status};
    }

    std::size_t live() const { return live_.size(); }

private:
    std::set<pid_t> live_;
};

// A deadlock fails the whole binary loudly instead of hanging it; children die with it
// (PR_SET_PDEATHSIG).
class Watchdog {
public:
    explicit Watchdog(unsigned seconds) {
        struct sigaction action{};
        action.sa_handler = [](int) {
            static const char message[] = "scoreboard test: watchdog expired (deadlock?)\n";
            [[maybe_unused]] auto ignored = ::write(2, message, sizeof message - 1);
            _exit(3);
        };
        sigaction(SIGALRM, &action, &saved_);
        alarm(seconds);
    }
    ~Watchdog() {
        alarm(0);
        sigaction(SIGALRM, &saved_, nullptr);
    }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

private:
    struct sigaction saved_{};
};

std::size_t count_in_state(const std::vector<SlotView>& views, SlotState state) {
    return std::count_if(views.begin(), views.end(), [&](const SlotView& v) { return v.state == state; });
}

TEST(Scoreboard, ClaimAndReapAccounting) {
    Scoreboard board(4);
    EXPECT_EQ(board.capacity(), 4u);
    EXPECT_EQ(board.active(), 0u);

    std::set<std::uint32_t> slots;
    for (std::uint64_t id = 1; id <= 4; ++id) {
        const auto slot = board.claim(id, "127.0.0.1:" + std::to_string(1000 + id));
        ASSERT_TRUE(slot.has_value());
        EXPECT_LT(*slot, 4u);
        slots.insert(*slot);
        EXPECT_EQ(board.active(), id);
    }
    EXPECT_EQ(slots.size(), 4u);
    EXPECT_FALSE(board.claim(5, "127.0.0.1:1005").has_value());
    EXPECT_EQ(board.active(), 4u);

    const std::uint32_t first = *slots.begin();
    board.reap(first);
    EXPECT_EQ(board.active(), 3u);
    board.reap(first);  // a free slot: nothing to give back
    EXPECT_EQ(board.active(), 3u);

    const auto again = board.claim(6, "127.0.0.1:1006");
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(*again, first);
    EXPECT_EQ(board.active(), 4u);

    // A released slot is given back once: by the release, not again by the reap.
    board.release_from_child(first);
    EXPECT_EQ(board.active(), 3u);
    board.release_from_child(first);
    EXPECT_EQ(board.active(), 3u);
    board.reap(first);
    EXPECT_EQ(board.active(), 3u);

    for (std::uint32_t slot : slots) board.reap(slot);
    EXPECT_EQ(board.active(), 0u);
    EXPECT_EQ(board.recount(), 0u);
    EXPECT_TRUE(board.snapshot().empty());
}

// A slot released by its child still holds its place until its reap: a full scoreboard of
// closing slots has no room, whatever active() says.
TEST(Scoreboard, ClosingSlotsHoldTheirPlaceUntilReaped) {
    Scoreboard board(2);
    const auto a = board.claim(1), b = board.claim(2);
    ASSERT_TRUE(a && b);
    EXPECT_FALSE(board.has_free_slot());
    board.release_from_child(*a);
    board.release_from_child(*b);
    EXPECT_EQ(board.active(), 0u);
    EXPECT_FALSE(board.has_free_slot());
    EXPECT_FALSE(board.claim(3).has_value());
    board.reap(*a);
    EXPECT_TRUE(board.has_free_slot());
    EXPECT_TRUE(board.claim(4).has_value());
    EXPECT_FALSE(board.has_free_slot());
    EXPECT_EQ(board.recount(), 1u);
    EXPECT_FALSE(board.has_free_slot()) << "the repair must count occupied slots the same way";
}

// Whoever reaps by connection id frees only that connection's slot: once the spawner freed a
// slot and claimed it for another connection, the master's late reap leaves it be.
TEST(Scoreboard, ReapByIdLeavesAReusedSlotAlone) {
    Scoreboard board(1);
    const auto slot = board.claim(1, "first");
    ASSERT_TRUE(slot);
    board.add_bytes(*slot, 3, 5);
    const auto traffic = board.reap(*slot, 1);
    ASSERT_TRUE(traffic);
    EXPECT_EQ(traffic->in, 3u);
    EXPECT_EQ(traffic->out, 5u);
    EXPECT_TRUE(traffic->known);
    ASSERT_EQ(board.claim(2, "second"), slot);
    EXPECT_FALSE(board.reap(*slot, 1));
    const auto view = board.slot(*slot);
    ASSERT_TRUE(view);
    EXPECT_EQ(view->id, 2u);
    EXPECT_EQ(view->peer, "second");
    EXPECT_EQ(board.active(), 1u);
    EXPECT_TRUE(board.reap(*slot, 2));
    EXPECT_EQ(board.active(), 0u);
    EXPECT_TRUE(board.has_free_slot());
}

TEST(Scoreboard, ZeroCapacityRefusesEveryClaim) {
    Scoreboard board(0);
    EXPECT_FALSE(board.claim(1, "x").has_value());
    EXPECT_EQ(board.active(), 0u);
    EXPECT_TRUE(board.snapshot().empty());
    EXPECT_FALSE(board.slot(0).has_value());
}

TEST(Scoreboard, ChildReleaseAndMasterReapAcrossFork) {
    Watchdog watchdog(30);
    Scoreboard board(8);
    Children children;

    // A built-in handler releases before exiting; an exec'd one never does (the reap gives back).
    const auto builtin = board.claim(1, "127.0.0.1:2001");
    const auto exec = board.claim(2, "127.0.0.1:2002");
    ASSERT_TRUE(builtin && exec);
    const pid_t builtin_pid = children.spawn([&] { board.release_from_child(*builtin); });
    const pid_t exec_pid = children.spawn([] {});
    ASSERT_GT(builtin_pid, 0);
    ASSERT_GT(exec_pid, 0);
    board.set_pid(*builtin, builtin_pid);
    board.set_pid(*exec, exec_pid);

    EXPECT_EQ(children.wait(builtin_pid).first, builtin_pid);
    EXPECT_EQ(children.wait(exec_pid).first, exec_pid);
    EXPECT_EQ(board.active(), 1u);  // only the exec'd child still counts until reaped
    const auto released = board.slot(*builtin);
    ASSERT_TRUE(released.has_value());
    EXPECT_EQ(released->state, SlotState::closing);
    EXPECT_EQ(board.slot(*exec)->state, SlotState::running);

    board.reap(*builtin);
    EXPECT_EQ(board.active(), 1u);
    board.reap(*exec);
    EXPECT_EQ(board.active(), 0u);
    EXPECT_EQ(board.repairs(), 0u);
}

TEST(Scoreboard, SnapshotShowsWhatTheChildrenRecorded) {
    Watchdog watchdog(30);
    Scoreboard board(4);
    Children children;

    const std::int64_t before = now_ns();
    const auto a = board.claim(41, "192.0.2.1:5555");
    const auto b = board.claim(42, "[2001:db8::1]:6666");
    const std::string long_peer = "unix:" + std::string(300, 'p');
    const auto c = board.claim(43, long_peer);
    ASSERT_TRUE(a && b && c);

    // Child a: traffic, then release. Child b: traffic only, still running.
    int go[2];
    ASSERT_EQ(pipe(go), 0);
    const pid_t pid_a = children.spawn([&] {
        board.add_bytes(*a, 10, 20);
        board.add_bytes(*a, 5, 0);
        board.release_from_child(*a);
    });
    const pid_t pid_b = children.spawn([&] {
        close(go[1]);
        board.add_bytes(*b, 7, 8);
        char byte;
        [[maybe_unused]] auto ignored = read(go[0], &byte, 1);  // stay alive until told
    });
    close(go[0]);
    board.set_pid(*a, pid_a);
    board.set_pid(*b, pid_b);
    board.set_bytes(*c, 1000, 2000);  // the master's TCP_INFO view for an exec'd handler
    children.wait(pid_a);

    // b's bytes arrive without a lock; wait for them (bounded by the watchdog).
    while (!board.slot(*b)->bytes_known) std::this_thread::sleep_for(std::chrono::milliseconds(1));

    const std::vector<SlotView> views = board.snapshot();
    ASSERT_EQ(views.size(), 3u);
    std::map<std::uint64_t, SlotView> by_id;
    for (const SlotView& view : views) by_id[view.id] = view;

    const SlotView& va = by_id.at(41);
    EXPECT_EQ(va.index, *a);
    EXPECT_EQ(va.pid, pid_a);
    EXPECT_EQ(va.peer, "192.0.2.1:5555");
    EXPECT_EQ(va.state, SlotState::closing);
    EXPECT_TRUE(va.bytes_known);
    EXPECT_EQ(va.bytes_in, 15u);
    EXPECT_EQ(va.bytes_out, 20u);
    EXPECT_GE(va.start_monotonic_ns, before);

    const SlotView& vb = by_id.at(42);
    EXPECT_EQ(vb.pid, pid_b);
    EXPECT_EQ(vb.peer, "[2001:db8::1]:6666");
    EXPECT_EQ(vb.state, SlotState::running);
    EXPECT_EQ(vb.bytes_in, 7u);
    EXPECT_EQ(vb.bytes_out, 8u);

    const SlotView& vc = by_id.at(43);
    EXPECT_EQ(vc.pid, 0);
    EXPECT_EQ(vc.peer, long_peer.substr(0, vc.peer.size()));
    EXPECT_GE(vc.peer.size(), 100u);
    EXPECT_LT(vc.peer.size(), long_peer.size());
    EXPECT_TRUE(vc.bytes_known);
    EXPECT_EQ(vc.bytes_in, 1000u);
    EXPECT_EQ(vc.bytes_out, 2000u);

    EXPECT_EQ(board.active(), 2u);
    EXPECT_EQ(count_in_state(views, SlotState::running), 2u);

    const auto single = board.slot(*b);
    ASSERT_TRUE(single.has_value());
    EXPECT_EQ(single->id, 42u);
    EXPECT_FALSE(board.slot(4).has_value());  // out of range
    board.reap(*a);
    EXPECT_FALSE(board.slot(*a).has_value());  // free

    close(go[1]);
    children.wait(pid_b);
    board.reap(*b);
    board.reap(*c);
    EXPECT_EQ(board.active(), 0u);
    EXPECT_TRUE(board.snapshot().empty());
}

// Five hundred connections end in the same instant: every child releases and exits at once while
// the master reaps them as waitpid reports them, exactly as the daemon does.
void close_all_at_once(bool children_release) {
    constexpr std::uint32_t kChildren = 500;
    Watchdog watchdog(60);
    Scoreboard board(kChildren + 12);
    Children children;

    int gate[2];
    ASSERT_EQ(pipe(gate), 0);
    std::map<pid_t, std::uint32_t> slot_of;
    for (std::uint32_t i = 0; i < kChildren; ++i) {
        const auto slot = board.claim(i + 1, "127.0.0.1:" + std::to_string(10000 + i));
        ASSERT_TRUE(slot.has_value());
        const pid_t pid = children.spawn([&, slot] {
            close(gate[1]);
            char byte;
            while (read(gate[0], &byte, 1) < 0 && errno == EINTR) {
            }
            if (children_release) board.release_from_child(*slot);
        });
        ASSERT_GT(pid, 0) << "fork failed after " << i << " children";
        board.set_pid(*slot, pid);
        slot_of[pid] = *slot;
    }
    close(gate[0]);
    EXPECT_EQ(board.active(), kChildren);

    close(gate[1]);  // every child wakes at once
    std::uint32_t reaped = 0;
    while (children.live() > 0) {
        const auto [pid, status] = children.wait();
        ASSERT_GT(pid, 0);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child " << pid << " status " << status;
        board.reap(slot_of.at(pid));
        ++reaped;
    }
    EXPECT_EQ(reaped, kChildren);
    EXPECT_EQ(board.active(), 0u);
    EXPECT_EQ(board.recount(), 0u);
    EXPECT_TRUE(board.snapshot().empty());
    EXPECT_EQ(board.repairs(), 0u);  // nobody died holding the lock
}

TEST(Scoreboard, FiveHundredChildrenReleaseAndExitAtOnce) { close_all_at_once(true); }
TEST(Scoreboard, FiveHundredChildrenExitAtOnceWithoutReleasing) { close_all_at_once(false); }

// A child dies holding the lock after each step of its critical section in turn: the master must
// get the lock (watchdog), repair once, and find the counter exact; so must a reap with no lock
// taken before it.
TEST(Scoreboard, ChildKilledAfterEveryStepOfItsCriticalSection) {
    Watchdog watchdog(30);
    Scoreboard board(4);
    Children children;
    const auto bystander = board.claim(1, "bystander");
    ASSERT_TRUE(bystander.has_value());

    for (bool reap_first : {false, true}) {
        for (unsigned steps = 0; steps <= Scoreboard::release_steps; ++steps) {
            SCOPED_TRACE("steps " + std::to_string(steps) + (reap_first ? ", reap first" : ""));
            const auto slot = board.claim(2, "127.0.0.1:3");
            ASSERT_TRUE(slot.has_value());
            ASSERT_EQ(board.active(), 2u);
            const std::uint64_t repairs = board.repairs();
            const pid_t pid = children.spawn([&, slot, steps] { board.test_die_inside_release(*slot, steps); });
            ASSERT_GT(pid, 0);
            const auto [done, status] = children.wait(pid);
            ASSERT_EQ(done, pid);
            EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;

            if (!reap_first) {
                const std::vector<SlotView> views = board.snapshot();
                EXPECT_EQ(board.repairs(), repairs + 1);
                const std::uint32_t expected = steps == 0 ? 2 : 1;  // step 1 is the commit point
                EXPECT_EQ(board.active(), expected);
                EXPECT_EQ(count_in_state(views, SlotState::running), expected);
                EXPECT_EQ(board.slot(*slot)->state, steps == 0 ? SlotState::running : SlotState::closing);
            }
            board.reap(*slot);
            EXPECT_EQ(board.repairs(), repairs + 1);
            EXPECT_EQ(board.active(), 1u);
            EXPECT_EQ(board.recount(), 1u);
        }
    }
    board.reap(*bystander);
    EXPECT_EQ(board.active(), 0u);
}

// Children hammer the critical section (each hold flips their slot between released and counted a
// thousand times) and are SIGKILLed at random instants, many of them inside it. The master keeps
// locking meanwhile: it must never hang (watchdog), and the counter must equal the slots' truth.
TEST(Scoreboard, ChildrenKilledInsideTheCriticalSectionLeaveAnExactCounter) {
    constexpr int kRounds = 50;
    constexpr int kMinRounds = 5;  // on a crowded machine the time budget may cut the rounds short
    constexpr int kPerRound = 3;
    constexpr unsigned kCyclesPerHold = 1000;
    Watchdog watchdog(60);
    Scoreboard board(kPerRound + 4);
    Children children;
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> delay_us(0, 1500);

    // Bystanders the repair must leave alone: one counted, one already released.
    const auto counted = board.claim(1000, "bystander:counted");
    const auto released = board.claim(1001, "bystander:released");
    ASSERT_TRUE(counted && released);
    board.release_from_child(*released);
    ASSERT_EQ(board.active(), 1u);

    const std::int64_t rounds_deadline = now_ns() + 10'000'000'000;
    const std::int64_t child_deadline = now_ns() + 30'000'000'000;  // children never outlive this
    int killed = 0;
    int round = 0;
    for (; round < kRounds && (round < kMinRounds || now_ns() < rounds_deadline); ++round) {
        std::map<pid_t, std::uint32_t> slot_of;
        for (int i = 0; i < kPerRound; ++i) {
            const auto slot = board.claim(std::uint64_t(round) * kPerRound + i, "127.0.0.1:1");
            ASSERT_TRUE(slot.has_value());
            const pid_t pid = children.spawn([&, slot] {
                while (now_ns() < child_deadline) board.test_cycle_release(*slot, kCyclesPerHold);
            });
            ASSERT_GT(pid, 0);
            board.set_pid(*slot, pid);
            slot_of[pid] = *slot;
        }
        // Kill them one by one at random instants, locking in between as the master would.
        for (const auto& [pid, slot] : slot_of) {
            (void)board.snapshot();
            std::this_thread::sleep_for(std::chrono::microseconds(delay_us(random)));
            ASSERT_EQ(kill(pid, SIGKILL), 0);
            ++killed;
            const auto [done, status] = children.wait(pid);
            ASSERT_EQ(done, pid);
            EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
        }
        // All dead. Even rounds: the next lock repairs, and active equals the slots that still
        // count. Odd rounds reap straight away: the reap alone must reconcile.
        if (round % 2 == 0) {
            const std::vector<SlotView> views = board.snapshot();
            const std::uint32_t after_lock = board.active();
            EXPECT_EQ(after_lock, count_in_state(views, SlotState::running)) << "round " << round;
            EXPECT_EQ(board.recount(), after_lock) << "round " << round;
        }
        for (const auto& [pid, slot] : slot_of) board.reap(slot);
        EXPECT_EQ(board.active(), 1u) << "round " << round;
    }
    EXPECT_EQ(killed, round * kPerRound);
    EXPECT_EQ(board.recount(), 1u);
    const auto survivor = board.slot(*counted);
    ASSERT_TRUE(survivor.has_value());
    EXPECT_EQ(survivor->state, SlotState::running);
    EXPECT_EQ(board.slot(*released)->state, SlotState::closing);
    // The kills did land inside the critical section (each hold is a few microseconds and the
    // children spend most of their time in one): otherwise this test proved nothing.
    EXPECT_GT(board.repairs(), 0u);
    std::fprintf(stderr, "rounds=%d kills=%d repairs=%llu\n", round, killed, static_cast<unsigned long long>(board.repairs()));
    board.reap(*counted);
    board.reap(*released);
    EXPECT_EQ(board.active(), 0u);
}

// The real release path, killed at random instants around it: whether the child got to release or
// not, the reap leaves the counter exact.
TEST(Scoreboard, ChildrenKilledAroundReleaseAreReconciledOnReap) {
    constexpr int kChildren = 100;
    constexpr int kWindowUs = 20'000;
    Watchdog watchdog(60);
    Scoreboard board(kChildren);
    Children children;
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<std::int64_t> offset_ns(0, std::int64_t{kWindowUs} * 1000);

    int gate[2];
    ASSERT_EQ(pipe(gate), 0);
    std::vector<std::pair<std::int64_t, pid_t>> kill_plan;
    std::map<pid_t, std::uint32_t> slot_of;
    for (int i = 0; i < kChildren; ++i) {
        const auto slot = board.claim(i, "127.0.0.1:2");
        ASSERT_TRUE(slot.has_value());
        const std::int64_t release_after = offset_ns(random);
        const pid_t pid = children.spawn([&, slot, release_after] {
            close(gate[1]);
            char byte;
            while (read(gate[0], &byte, 1) < 0 && errno == EINTR) {
            }
            const std::int64_t at = now_ns() + release_after;
            const timespec when{static_cast<time_t>(at / 1'000'000'000), static_cast<long>(at % 1'000'000'000)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, nullptr) == EINTR) {
            }
            board.release_from_child(*slot);
            pause();  // like a child between its release and its exit
        });
        ASSERT_GT(pid, 0);
        board.set_pid(*slot, pid);
        slot_of[pid] = *slot;
        kill_plan.emplace_back(offset_ns(random), pid);
    }
    close(gate[0]);
    std::sort(kill_plan.begin(), kill_plan.end());

    const std::int64_t base = now_ns();
    close(gate[1]);  // every child starts its clock now
    for (const auto& [after, pid] : kill_plan) {
        const std::int64_t wait = base + after - now_ns();
        if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
        ASSERT_EQ(kill(pid, SIGKILL), 0);
    }
    std::size_t released_before_kill = 0;
    while (children.live() > 0) {
        const auto [pid, status] = children.wait();
        ASSERT_GT(pid, 0);
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
        const auto view = board.slot(slot_of.at(pid));
        ASSERT_TRUE(view.has_value());
        released_before_kill += view->state == SlotState::closing ? 1 : 0;
        board.reap(slot_of.at(pid));
    }
    EXPECT_EQ(board.active(), 0u);
    EXPECT_EQ(board.recount(), 0u);
    EXPECT_TRUE(board.snapshot().empty());
    std::fprintf(stderr, "children=%d released_before_kill=%zu\n", kChildren, released_before_kill);
}

} // namespace
} // namespace forkd
