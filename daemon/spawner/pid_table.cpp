// SPDX-License-Identifier: MIT
#include "daemon/spawner/pid_table.hpp"

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

std::optional<std::size_t> PidTable::index_of(pid_t pid) const {
    if (pid <= 0) return std::nullopt;
    for (std::size_t i = home(pid);; i = next(i)) {
        if (entries_[i].pid == pid) return i;
        if (entries_[i].pid == 0) return std::nullopt;
    }
}

const PidTable::Entry* PidTable::find(pid_t pid) const {
    const auto i = index_of(pid);
    return i ? &entries_[*i] : nullptr;
}

bool PidTable::insert(const Entry& entry) {
    // One entry always stays empty, so that every probe ends.
    if (entry.pid <= 0 || size_ + 1 >= entries_.size()) return false;
    std::size_t i = home(entry.pid);
    for (; entries_[i].pid != 0; i = next(i))
        if (entries_[i].pid == entry.pid) return false;
    entries_[i] = entry;
    ++size_;
    return true;
}

std::optional<PidTable::Entry> PidTable::take(pid_t pid) {
    const auto found = index_of(pid);
    if (!found) return std::nullopt;
    const Entry taken = entries_[*found];
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
    return taken;
}

} // namespace forkd
