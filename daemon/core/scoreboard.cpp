// SPDX-License-Identifier: MIT
#include "daemon/core/scoreboard.hpp"

#include "common/base/monotonic_clock.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

namespace forkd {

namespace {

// The mapping is shared by separate address spaces: an atomic that needed a hidden lock (kept in
// process-private memory) would not be atomic across processes. Lock-free is what makes them
// address-free on this ABI.
static_assert(std::atomic<std::uint8_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);
static_assert(std::atomic<pid_t>::is_always_lock_free);

constexpr std::size_t kPeerSize = 128;  // "[v6%scope]:port" fits; long UNIX paths are truncated

constexpr std::uint8_t as_byte(SlotState state) { return static_cast<std::uint8_t>(state); }

// A broken invariant in shared state is a crash with a message, never a silent continue.
[[noreturn]] void die(const char* what, const char* why) {
    std::fprintf(stderr, "forkd: scoreboard: %s: %s\n", what, why);
    std::abort();
}

constexpr std::size_t round_up(std::size_t n, std::size_t align) {
    return (n + align - 1) / align * align;
}

// The mapping's layout, first in it: a memfd of another layout (an older forkd's, handed on by a
// live upgrade or mapped by an older forkd-spawner) is refused, never misread. Bump it with every
// change of Shared, Slot or the tables after them.
constexpr std::uint64_t kLayout = 0x464b53420002ull;  // "FKSB", 2: per-source tables

} // namespace

struct Scoreboard::Slot {
    // Written under the lock only.
    std::atomic<std::uint8_t> state{as_byte(SlotState::free)};
    std::atomic<std::uint8_t> released{0};  // the child already gave its count back
    std::uint64_t id = 0;
    std::int64_t start_ns = 0;
    SourceKey source;  // counted for it while counted() (empty: for none)
    char peer[kPeerSize] = {};
    // Written without the lock, each by its one writer (the master, or the slot's own child).
    std::atomic<pid_t> pid{0};
    std::atomic<std::uint64_t> bytes_in{0}, bytes_out{0};
    std::atomic<std::uint8_t> bytes_known{0};

    // The accounting truth that `active` mirrors and the repair rebuilds it from.
    bool counted() const {
        return state.load(std::memory_order_relaxed) == as_byte(SlotState::running) &&
               released.load(std::memory_order_relaxed) == 0;
    }
};

struct Scoreboard::Shared {
    std::uint64_t layout = kLayout;         // written once, before any other process maps it
    std::uint64_t capacity = 0;             // likewise
    pthread_mutex_t mutex;
    std::atomic<std::uint32_t> active{0};  // written under the lock; read lock-free
    std::atomic<std::uint32_t> occupied{0};  // slots not free; likewise
    std::atomic<std::uint64_t> repairs{0};
    std::uint32_t next_free_hint = 0;       // under the lock
    std::atomic<std::uint64_t> next_id{1};
    std::uint32_t sources = 0;              // under the lock: the per-source table's size
    Rate source_rate;                       // under the lock: the rate its buckets were filled under
};

// Where each part of the mapping begins: the header, `capacity` slots, the per-source counts
// (twice the slots, so that a probe always ends), the per-source rate buckets.
struct Scoreboard::Layout {
    std::size_t count_entries, counts_offset, rate_entries, rates_offset, size;
};

namespace {

// Plain copy of one slot, taken under the lock and turned into a SlotView after it.
struct SlotCopy {
    std::uint32_t index;
    std::uint64_t id;
    pid_t pid;
    std::int64_t start_ns;
    std::uint8_t state, released, bytes_known;
    std::uint64_t bytes_in, bytes_out;
    char peer[kPeerSize];
};

SlotView to_view(const SlotCopy& copy) {
    SlotView view;
    view.index = copy.index;
    view.id = copy.id;
    view.pid = copy.pid;
    view.peer.assign(copy.peer, strnlen(copy.peer, kPeerSize));
    view.start_monotonic_ns = copy.start_ns;
    // A child killed between its two stores may leave "running" with the release flag set.
    view.state = copy.released ? SlotState::closing : static_cast<SlotState>(copy.state);
    view.bytes_in = copy.bytes_in;
    view.bytes_out = copy.bytes_out;
    view.bytes_known = copy.bytes_known != 0;
    return view;
}

} // namespace

// Holds the robust mutex for one critical section. On EOWNERDEAD (the previous holder died holding
// it) it rebuilds `active` from the slots, then marks the mutex consistent. Every critical section
// is written so that the slots are the truth at every instruction: killing its holder anywhere
// leaves at worst a stale `active`, which this repair recomputes. A holder killed during the
// repair itself leaves the mutex inconsistent, and the next locker repairs again.
//
// No signal is blocked around a section: nobody who takes the lock has a signal handler that
// could re-enter it (the master reads its signals through signalfd; handler children run with
// default dispositions). A signal that arrives inside a section either does nothing or kills the
// holder, which the robust mutex turns into a repair. Only a deliberate SIGSTOP or a debugger
// can hold the lock longer than a few instructions.
Scoreboard::Lock::Lock(const Scoreboard& board) : board_(board) {
    int rc = pthread_mutex_lock(&board_.shared_->mutex);
    if (rc == EOWNERDEAD) {
        board_.repair();
        board_.shared_->repairs.fetch_add(1, std::memory_order_relaxed);
        rc = pthread_mutex_consistent(&board_.shared_->mutex);
        if (rc != 0) die("pthread_mutex_consistent", std::strerror(rc));
    } else if (rc != 0) {
        die("pthread_mutex_lock", std::strerror(rc));
    }
}

Scoreboard::Lock::~Lock() { pthread_mutex_unlock(&board_.shared_->mutex); }

std::size_t Scoreboard::slots_offset() { return round_up(sizeof(Shared), alignof(Slot)); }

Scoreboard::Layout Scoreboard::layout_for(std::size_t capacity) {
    Layout layout{};
    layout.count_entries = SourceCounts::entries_for(capacity);
    layout.counts_offset = round_up(slots_offset() + capacity * sizeof(Slot), alignof(SourceCounts::Entry));
    layout.rate_entries = SourceRates::entries_for(SourceRates::acceptor_sources);
    layout.rates_offset = round_up(layout.counts_offset + layout.count_entries * sizeof(SourceCounts::Entry),
                                   alignof(SourceRates::Entry));
    layout.size = layout.rates_offset + layout.rate_entries * sizeof(SourceRates::Entry);
    return layout;
}

// This process's views of the tables after the slots.
void Scoreboard::attach_tables() {
    const Layout layout = layout_for(capacity_);
    char* base = reinterpret_cast<char*>(shared_);
    auto* counts = std::launder(reinterpret_cast<SourceCounts::Entry*>(base + layout.counts_offset));
    sources_.emplace(std::span(counts, layout.count_entries), shared_->sources);
    rate_entries_ = {std::launder(reinterpret_cast<SourceRates::Entry*>(base + layout.rates_offset)),
                     layout.rate_entries};
}

Scoreboard::Scoreboard(std::size_t capacity) : capacity_(capacity) {
    if (capacity > UINT32_MAX) throw std::invalid_argument("scoreboard: capacity too large");
    const Layout layout = layout_for(capacity);
    mapping_size_ = layout.size;
    // A memfd rather than a named object: it is handed to the spawner (which runs another
    // binary, so it cannot inherit an anonymous mapping), it is invisible to ipcs and /dev/shm,
    // and the kernel frees it with the last process that maps it or holds the fd.
    memfd_.reset(memfd_create("forkd-scoreboard", MFD_CLOEXEC));
    if (!memfd_) throw std::system_error(errno, std::generic_category(), "scoreboard: memfd_create");
    if (ftruncate(memfd_.get(), off_t(mapping_size_)) != 0) {
        throw std::system_error(errno, std::generic_category(),
                                "scoreboard: ftruncate to " + std::to_string(mapping_size_) + " bytes");
    }
    void* memory = map(memfd_.get(), mapping_size_);
    shared_ = new (memory) Shared{};
    shared_->capacity = capacity;
    for (std::size_t i = 0; i < capacity; ++i) {
        new (static_cast<char*>(memory) + slots_offset() + i * sizeof(Slot)) Slot{};
    }
    for (std::size_t i = 0; i < layout.count_entries; ++i)
        new (static_cast<char*>(memory) + layout.counts_offset + i * sizeof(SourceCounts::Entry)) SourceCounts::Entry{};
    for (std::size_t i = 0; i < layout.rate_entries; ++i)
        new (static_cast<char*>(memory) + layout.rates_offset + i * sizeof(SourceRates::Entry)) SourceRates::Entry{};
    attach_tables();

    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    const int rc = pthread_mutex_init(&shared_->mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        munmap(memory, mapping_size_);
        throw std::system_error(rc, std::generic_category(), "scoreboard: pthread_mutex_init");
    }
}

Scoreboard::Scoreboard(UniqueFd memfd) : memfd_(std::move(memfd)) {
    struct stat st {};
    if (fstat(memfd_.get(), &st) != 0)
        throw std::system_error(errno, std::generic_category(), "scoreboard: fstat");
    if (std::size_t(st.st_size) < slots_offset())
        throw std::invalid_argument("scoreboard: mapping too small for its header");
    mapping_size_ = std::size_t(st.st_size);
    shared_ = std::launder(static_cast<Shared*>(map(memfd_.get(), mapping_size_)));
    const auto refuse = [this](const char* why) {
        munmap(shared_, mapping_size_);
        shared_ = nullptr;
        throw std::invalid_argument(why);
    };
    if (shared_->layout != kLayout) refuse("scoreboard: made by another forkd build (its layout differs)");
    capacity_ = shared_->capacity;
    if (capacity_ > UINT32_MAX || layout_for(capacity_).size != mapping_size_)
        refuse("scoreboard: size does not match its capacity");
    attach_tables();
}

void* Scoreboard::map(int fd, std::size_t size) {
    void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (memory == MAP_FAILED) {
        throw std::system_error(errno, std::generic_category(),
                                "scoreboard: mmap of " + std::to_string(size) + " bytes");
    }
    return memory;
}

Scoreboard::~Scoreboard() {
    // No pthread_mutex_destroy: other processes (children) may still hold this mapping and use
    // the mutex. Unmapping only drops this process's view.
    if (shared_) munmap(shared_, mapping_size_);
}

std::size_t Scoreboard::capacity() const { return capacity_; }

Scoreboard::Slot& Scoreboard::slot_at(std::uint32_t index) const {
    if (index >= capacity_) die("slot index out of range", std::to_string(index).c_str());
    char* base = reinterpret_cast<char*>(shared_) + slots_offset();
    return *std::launder(reinterpret_cast<Slot*>(base + std::size_t{index} * sizeof(Slot)));
}

// Every count from the slots, the per-source table too. A slot whose source no longer fits (it
// cannot happen: the table has twice the slots' entries) stays counted for active alone.
void Scoreboard::rebuild_active() const {
    std::uint32_t count = 0, occupied = 0;
    sources_->clear();
    for (std::uint32_t i = 0; i < capacity_; ++i) {
        Slot& slot = slot_at(i);
        if (slot.counted()) {
            ++count;
            if (!sources_->add(slot.source)) slot.source = {};
        }
        occupied += slot.state.load(std::memory_order_relaxed) != as_byte(SlotState::free) ? 1 : 0;
    }
    shared_->active.store(count, std::memory_order_relaxed);
    shared_->occupied.store(occupied, std::memory_order_relaxed);
}

// The counts are rebuilt from the slots; the rate buckets have no truth elsewhere, and one the dead
// holder was writing may be torn, so every bucket starts full again.
void Scoreboard::repair() const {
    rebuild_active();
    for (SourceRates::Entry& e : rate_entries_) e = {};
}

// The child's critical section, in numbered steps so that a test can stop it after any of them
// (the real path runs them all). The release flag is the commit point: once it is stored the slot
// no longer counts, whatever happens to the stores after it.
void Scoreboard::release_locked(Slot& slot, unsigned steps) const {
    if (!slot.counted()) return;
    if (steps < 1) return;
    slot.released.store(1, std::memory_order_relaxed);
    if (steps < 2) return;
    slot.state.store(as_byte(SlotState::closing), std::memory_order_relaxed);
    if (steps < 3) return;
    shared_->active.fetch_sub(1, std::memory_order_relaxed);
    if (steps < 4) return;
    sources_->remove(slot.source);
}

void Scoreboard::claim_back_locked(Slot& slot) const {
    if (slot.counted()) return;
    slot.state.store(as_byte(SlotState::running), std::memory_order_relaxed);
    slot.released.store(0, std::memory_order_relaxed);
    shared_->active.fetch_add(1, std::memory_order_relaxed);
    if (!sources_->add(slot.source)) slot.source = {};
}

std::uint64_t Scoreboard::next_id() {
    return shared_->next_id.fetch_add(1, std::memory_order_relaxed);
}

namespace {

void copy_peer(char (&to)[kPeerSize], std::string_view peer) {
    const std::size_t length = std::min(peer.size(), kPeerSize - 1);
    // An empty view may have a null data(): memcpy's source must never be null, even for 0 bytes.
    if (length > 0) std::memcpy(to, peer.data(), length);
    to[length] = '\0';
}

} // namespace

std::optional<std::uint32_t> Scoreboard::claim(std::uint64_t id, std::string_view peer) {
    const Lock lock(*this);
    return claim(lock, id, peer, SourceKey{});
}

std::optional<std::uint32_t> Scoreboard::claim(const Lock&, std::uint64_t id, std::string_view peer,
                                               const SourceKey& source) {
    const std::int64_t now = monotonic_ns();
    for (std::uint32_t n = 0; n < capacity_; ++n) {
        const std::uint32_t index = static_cast<std::uint32_t>((shared_->next_free_hint + n) % capacity_);
        Slot& slot = slot_at(index);
        if (slot.state.load(std::memory_order_relaxed) != as_byte(SlotState::free)) continue;
        slot.id = id;
        slot.start_ns = now;
        copy_peer(slot.peer, peer);
        slot.pid.store(0, std::memory_order_relaxed);
        slot.bytes_in.store(0, std::memory_order_relaxed);
        slot.bytes_out.store(0, std::memory_order_relaxed);
        slot.bytes_known.store(0, std::memory_order_relaxed);
        slot.released.store(0, std::memory_order_relaxed);
        // Counted for its source before the slot counts at all: a holder killed in between
        // leaves a count the repair recomputes from the slots.
        slot.source = sources_->add(source) ? source : SourceKey{};
        // Occupied first: a holder killed between the two stores leaves occupied one too high,
        // which the repair recounts, never a slot in use that nobody counts as occupied.
        shared_->occupied.fetch_add(1, std::memory_order_relaxed);
        slot.state.store(as_byte(SlotState::running), std::memory_order_relaxed);
        shared_->active.fetch_add(1, std::memory_order_relaxed);
        shared_->next_free_hint = static_cast<std::uint32_t>((index + 1) % capacity_);
        return index;
    }
    return std::nullopt;
}

void Scoreboard::set_pid(std::uint32_t index, pid_t pid) {
    slot_at(index).pid.store(pid, std::memory_order_relaxed);
}

pid_t Scoreboard::pid(std::uint32_t index) const {
    return slot_at(index).pid.load(std::memory_order_relaxed);
}

void Scoreboard::reap_locked(Slot& slot) const {
    if (slot.state.load(std::memory_order_relaxed) == as_byte(SlotState::free)) return;
    if (slot.counted()) {
        shared_->active.fetch_sub(1, std::memory_order_relaxed);
        sources_->remove(slot.source);
    }
    slot.state.store(as_byte(SlotState::free), std::memory_order_relaxed);
    shared_->occupied.fetch_sub(1, std::memory_order_relaxed);
    slot.released.store(0, std::memory_order_relaxed);
    slot.pid.store(0, std::memory_order_relaxed);
}

void Scoreboard::reap(std::uint32_t index) {
    Slot& slot = slot_at(index);
    Lock lock(*this);
    reap_locked(slot);
}

std::optional<Scoreboard::Traffic> Scoreboard::reap(std::uint32_t index, std::uint64_t id) {
    Slot& slot = slot_at(index);
    Lock lock(*this);
    if (slot.state.load(std::memory_order_relaxed) == as_byte(SlotState::free) || slot.id != id)
        return std::nullopt;
    const Traffic last = traffic(index);
    reap_locked(slot);
    return last;
}

void Scoreboard::release_from_child(std::uint32_t index) {
    Slot& slot = slot_at(index);
    Lock lock(*this);
    release_locked(slot);
}

void Scoreboard::test_die_inside_release(std::uint32_t index, unsigned steps) {
    Slot& slot = slot_at(index);
    Lock lock(*this);
    release_locked(slot, steps);
    kill(getpid(), SIGKILL);
    for (;;) pause();  // not reached: SIGKILL cannot be blocked
}

void Scoreboard::test_cycle_release(std::uint32_t index, unsigned rounds) {
    Slot& slot = slot_at(index);
    Lock lock(*this);
    for (unsigned i = 0; i < rounds; ++i) {
        release_locked(slot);
        claim_back_locked(slot);
    }
}

void Scoreboard::add_bytes(std::uint32_t index, std::uint64_t in, std::uint64_t out) {
    Slot& slot = slot_at(index);
    slot.bytes_in.fetch_add(in, std::memory_order_relaxed);
    slot.bytes_out.fetch_add(out, std::memory_order_relaxed);
    slot.bytes_known.store(1, std::memory_order_relaxed);
}

void Scoreboard::set_bytes(std::uint32_t index, std::uint64_t in, std::uint64_t out) {
    Slot& slot = slot_at(index);
    slot.bytes_in.store(in, std::memory_order_relaxed);
    slot.bytes_out.store(out, std::memory_order_relaxed);
    slot.bytes_known.store(1, std::memory_order_relaxed);
}

Scoreboard::Traffic Scoreboard::traffic(std::uint32_t index) const {
    const Slot& slot = slot_at(index);
    return {slot.bytes_in.load(std::memory_order_relaxed),
            slot.bytes_out.load(std::memory_order_relaxed),
            slot.bytes_known.load(std::memory_order_relaxed) != 0};
}

std::int64_t Scoreboard::start_ns(std::uint32_t index) const { return slot_at(index).start_ns; }

std::uint32_t Scoreboard::active() const {
    return shared_->active.load(std::memory_order_relaxed);
}

bool Scoreboard::has_free_slot() const {
    return shared_->occupied.load(std::memory_order_relaxed) < capacity_;
}

std::uint32_t Scoreboard::recount() {
    Lock lock(*this);
    rebuild_active();
    return shared_->active.load(std::memory_order_relaxed);
}

std::uint32_t Scoreboard::from_source(const Lock&, const SourceKey& source) const {
    return sources_->count(source);
}

std::uint32_t Scoreboard::from_source(const SourceKey& source) const {
    const Lock lock(*this);
    return from_source(lock, source);
}

std::span<SourceRates::Entry> Scoreboard::source_rate_storage() const { return rate_entries_; }

Rate& Scoreboard::source_rate_table_rate() const { return shared_->source_rate; }

std::uint64_t Scoreboard::repairs() const {
    return shared_->repairs.load(std::memory_order_relaxed);
}

namespace {

SlotCopy copy_of(std::uint32_t index, const auto& slot) {
    SlotCopy copy{};
    copy.index = index;
    copy.id = slot.id;
    copy.pid = slot.pid.load(std::memory_order_relaxed);
    copy.start_ns = slot.start_ns;
    copy.state = slot.state.load(std::memory_order_relaxed);
    copy.released = slot.released.load(std::memory_order_relaxed);
    copy.bytes_known = slot.bytes_known.load(std::memory_order_relaxed);
    copy.bytes_in = slot.bytes_in.load(std::memory_order_relaxed);
    copy.bytes_out = slot.bytes_out.load(std::memory_order_relaxed);
    std::memcpy(copy.peer, slot.peer, kPeerSize);
    return copy;
}

} // namespace

std::optional<SlotView> Scoreboard::slot(std::uint32_t index) const {
    if (index >= capacity_) return std::nullopt;
    SlotCopy copy;
    {
        Lock lock(*this);
        const Slot& slot = slot_at(index);
        if (slot.state.load(std::memory_order_relaxed) == as_byte(SlotState::free)) return std::nullopt;
        copy = copy_of(index, slot);
    }
    return to_view(copy);
}

std::vector<SlotView> Scoreboard::snapshot() const {
    // Copy plain bytes under the lock (no allocation there), build the views after releasing it.
    std::vector<SlotCopy> copies;
    copies.reserve(capacity_);
    {
        Lock lock(*this);
        for (std::uint32_t i = 0; i < capacity_; ++i) {
            const Slot& slot = slot_at(i);
            if (slot.state.load(std::memory_order_relaxed) != as_byte(SlotState::free)) {
                copies.push_back(copy_of(i, slot));
            }
        }
    }
    std::vector<SlotView> views;
    views.reserve(copies.size());
    for (const SlotCopy& copy : copies) views.push_back(to_view(copy));
    return views;
}

} // namespace forkd
