#include "daemon/pid_table.hpp"

#include <bit>
#include <stdexcept>

namespace forkd {

std::size_t PidTable::entries_for(std::size_t handlers) {
    return std::bit_ceil(handlers * 2 < 16 ? std::size_t(16) : handlers * 2);
}

PidTable::PidTable(std::span<Entry> storage) : entries_(storage), mask_(storage.size() - 1) {
    if (storage.empty() || !std::has_single_bit(storage.size()))
        throw std::invalid_argument("PidTable: storage size must be a power of two");
}

std::size_t PidTable::home(pid_t pid) const {
    // Fibonacci hashing: consecutive pids (the common case) land far apart.
    return std::size_t((std::uint64_t(std::uint32_t(pid)) * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
}

std::optional<std::size_t> PidTable::find(pid_t pid) const {
    for (std::size_t i = home(pid);; i = next(i)) {
        if (entries_[i].pid == pid) return i;
        if (entries_[i].pid == 0) return std::nullopt;
    }
}

bool PidTable::insert(pid_t pid, std::uint64_t id) {
    // One entry always stays empty, so that every probe ends.
    if (pid <= 0 || size_ + 1 >= entries_.size()) return false;
    std::size_t i = home(pid);
    for (; entries_[i].pid != 0; i = next(i))
        if (entries_[i].pid == pid) return false;
    entries_[i] = {pid, id};
    ++size_;
    return true;
}

std::optional<std::uint64_t> PidTable::take(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    const auto found = find(pid);
    if (!found) return std::nullopt;
    const std::uint64_t id = entries_[*found].id;
    // Backward-shift deletion: move later entries of the run into the hole when the hole lies
    // on their probe path (between their home and where they sit, cyclically).
    std::size_t hole = *found;
    for (std::size_t i = next(hole); entries_[i].pid != 0; i = next(i)) {
        const std::size_t h = home(entries_[i].pid);
        const bool hole_on_path = ((i - h) & mask_) >= ((i - hole) & mask_);
        if (hole_on_path) {
            entries_[hole] = entries_[i];
            hole = i;
        }
    }
    entries_[hole] = {};
    --size_;
    return id;
}

pid_t PidTable::pid_of(std::uint64_t id) const {
    for (const Entry& e : entries_)
        if (e.pid && e.id == id) return e.pid;
    return 0;
}

} // namespace forkd
