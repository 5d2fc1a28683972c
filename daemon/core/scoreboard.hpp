// SPDX-License-Identifier: MIT
#pragma once
// The scoreboard: the active-connection counter and one slot per connection, in a MAP_SHARED
// mapping of a memfd. The master creates it; the spawner maps the same memfd, and the built-in
// handler children it forks inherit the mapping.
//
// Lock: a process-shared *robust* mutex (a binary semaphore the kernel releases when its holder
// dies). A child SIGKILLed inside the critical section therefore cannot deadlock anyone: the next
// locker gets EOWNERDEAD and rebuilds the counter from the slots, which are the truth.
// A memfd has no name in any namespace (not in /dev/shm, not in ipcs): nothing outlives the last
// process that maps it.
//
// Accounting truth: a slot counts towards `active` while it is in state running and its child has
// not released it. Every critical section keeps `active` equal to that count at its end, and the
// repair recomputes it from the slots, so a holder killed at any instruction leaves a state the
// next locker makes exact.
//
// Per source (max-per-source): a slot claimed for a source records its key, and counts for that
// source exactly while it counts towards `active`; the per-source table after the slots is the
// one count every accepting process (forkd-spawner, event-mode workers, the master for exec'd
// handlers) checks and changes under the same lock, and the repair rebuilds it from the slots too.
// After it, the per-source rate buckets (max-per-source-rate) every acceptor takes tokens from,
// under the same lock; a repair cannot tell a half-written bucket from a whole one, so it resets
// them all to full (a source may then get one more bucketful, once per holder killed).
#include "common/base/runtime_limits.hpp"
#include "common/base/unique_fd.hpp"
#include "daemon/admission/source_counts.hpp"
#include "daemon/admission/source_rates.hpp"

#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace forkd {

// free: unused. running: connection being served. closing: the child released the slot (its
// connection is over, it is exiting); whoever forked it (the master for exec, the spawner for
// built-ins) frees it on reap.
enum class SlotState : std::uint8_t { free = 0, running = 1, closing = 2 };

// A copy of one slot, for the control socket and logs.
struct SlotView {
    std::uint32_t index = 0;
    std::uint64_t id = 0;
    pid_t pid = 0;
    std::string peer;
    std::int64_t start_monotonic_ns = 0;
    SlotState state = SlotState::free;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    bool bytes_known = false;
};

class Scoreboard {
public:
    // Holds the robust mutex for one critical section (repairing first if its last holder
    // died). Public for admission, whose per-source decision and the claim it allows are one
    // section (claim_admitted, daemon/core/admitted_claim.hpp): keep what runs under it short
    // and allocation-free.
    class Lock {
    public:
        explicit Lock(const Scoreboard& board);
        ~Lock();
        Lock(const Lock&) = delete;
        Lock& operator=(const Lock&) = delete;

    private:
        const Scoreboard& board_;
    };

    // capacity: slots available; sized from the largest max-connections the daemon may take
    // (set at runtime can raise it only up to capacity).
    explicit Scoreboard(std::size_t capacity);
    // Maps a scoreboard another process created (the spawner, from the master's memfd).
    // Throws if the memfd's size does not match the capacity it records.
    explicit Scoreboard(UniqueFd memfd);
    ~Scoreboard();
    Scoreboard(const Scoreboard&) = delete;
    Scoreboard& operator=(const Scoreboard&) = delete;

    std::size_t capacity() const;
    // The memfd behind the mapping, to hand to the spawner (O_CLOEXEC).
    int memfd() const { return memfd_.get(); }

    // A connection id, unique for the daemon's life: the master and the spawner both take them.
    std::uint64_t next_id();
    // Whoever accepted the connection, before fork: reserves a slot (state running, active+1).
    // nullopt when full. Nothing here allocates (the spawner calls it between forks).
    std::optional<std::uint32_t> claim(std::uint64_t id, std::string_view peer = {});
    // The same inside `lock`'s section, the slot counted for `source` (an empty key: for none)
    // while it counts towards active.
    std::optional<std::uint32_t> claim(const Lock& lock, std::uint64_t id, std::string_view peer,
                                       const SourceKey& source);
    // Connections counted for `source` now, inside a section or in one of its own.
    std::uint32_t from_source(const Lock& lock, const SourceKey& source) const;
    std::uint32_t from_source(const SourceKey& source) const;
    // The shared per-source rate buckets and the rate they were filled under, for an
    // AdmissionGate over them; touched only inside a Lock's section.
    std::span<SourceRates::Entry> source_rate_storage() const;
    Rate& source_rate_table_rate() const;
    // Whoever forked the handler (the master for exec, the spawner for built-ins), after the
    // fork: records its pid. pid() reads it back lock-free (0 before).
    void set_pid(std::uint32_t slot, pid_t pid);
    pid_t pid(std::uint32_t slot) const;
    // On reap (or after a failed fork): frees the slot; decrements active unless the child
    // already released it. Reaping a free slot does nothing.
    void reap(std::uint32_t slot);

    // Child (built-in handler), when its connection is over: active-1 now, before exit; marks the
    // slot closing. Idempotent.
    void release_from_child(std::uint32_t slot);
    // Child: traffic accounting (its own slot only; relaxed atomics, no lock).
    void add_bytes(std::uint32_t slot, std::uint64_t in, std::uint64_t out);

    // Master (exec handlers): bytes as seen by TCP_INFO.
    void set_bytes(std::uint32_t slot, std::uint64_t in, std::uint64_t out);
    // Master: one slot's byte counts, lock-free (for the connection's last log line).
    struct Traffic {
        std::uint64_t in = 0, out = 0;
        bool known = false;
    };
    Traffic traffic(std::uint32_t slot) const;
    // reap(slot), only if the slot still holds connection `id`; returns its last traffic then.
    // nullopt: someone else freed it already (and it may serve another connection by now).
    std::optional<Traffic> reap(std::uint32_t slot, std::uint64_t id);
    // When the slot was claimed (CLOCK_MONOTONIC ns); read once its claim is known to be done.
    std::int64_t start_ns(std::uint32_t slot) const;

    // Lock-free read; exact as of the last critical section (a reap or recount repairs it).
    std::uint32_t active() const;
    // Whether claim() can find a slot: a slot closing still holds its place until its reap, so
    // this, not active() < capacity(), is what decides. Lock-free, like active().
    bool has_free_slot() const;
    std::optional<SlotView> slot(std::uint32_t index) const;  // nullopt: out of range or free
    std::vector<SlotView> snapshot() const;  // slots not free, by index

    // Test hook / repair path: recomputes active from the slots under the lock.
    std::uint32_t recount();
    // How many times a locker found the lock's previous holder dead and repaired the counter.
    std::uint64_t repairs() const;

    // Test hook: in ONE critical section, release the slot as release_from_child does and claim it
    // back, `rounds` times, ending running. Lets tests SIGKILL a child inside the critical section.
    void test_cycle_release(std::uint32_t slot, unsigned rounds);
    // Test hook: takes the lock, runs the first `steps` steps of release_from_child's critical
    // section (0 to release_steps), then SIGKILLs the calling process while holding the lock.
    [[noreturn]] void test_die_inside_release(std::uint32_t slot, unsigned steps);
    static constexpr unsigned release_steps = 4;

private:
    struct Shared;
    struct Slot;
    struct Layout;
    static std::size_t slots_offset();
    static Layout layout_for(std::size_t capacity);
    static void* map(int fd, std::size_t size);
    void attach_tables();
    Slot& slot_at(std::uint32_t index) const;
    void repair() const;                     // under the lock, its last holder dead
    void rebuild_active() const;             // under the lock
    void release_locked(Slot& slot, unsigned steps = release_steps) const;  // under the lock
    void claim_back_locked(Slot& slot) const;
    void reap_locked(Slot& slot) const;
    UniqueFd memfd_;
    Shared* shared_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t mapping_size_ = 0;
    // This process's views of the shared tables (their state is all in the mapping).
    mutable std::optional<SourceCounts> sources_;
    std::span<SourceRates::Entry> rate_entries_;
};

} // namespace forkd
