// SPDX-License-Identifier: MIT
#pragma once
// The spawner's running handlers: pid → connection id and slot, in storage the caller provides (memory
// its children do not inherit, see not_inherited.hpp), so that it never allocates. Open
// addressing with linear probing; a removal shifts the entries behind it back, so there are no
// tombstones and a lookup stops at the first empty entry.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace forkd {

class PidTable {
public:
    struct Entry {
        pid_t pid = 0;  // 0: empty
        std::uint64_t id = 0;
        std::uint32_t slot = 0;
    };
    // Entries needed to hold `handlers` pids with the table at most half full.
    static std::size_t entries_for(std::size_t handlers);

    // `storage.size()` must be a power of two, as entries_for() gives; its entries empty.
    explicit PidTable(std::span<Entry> storage);

    // False if the table is full or the pid is already there.
    bool insert(const Entry& entry);
    // The pid's entry, or null.
    const Entry* find(pid_t pid) const;
    // The pid's entry, removed from the table.
    std::optional<Entry> take(pid_t pid);
    std::size_t size() const { return size_; }

    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (const Entry& e : entries_)
            if (e.pid) fn(e);
    }

private:
    std::size_t home(pid_t pid) const;
    std::size_t next(std::size_t i) const { return (i + 1) & mask_; }
    std::optional<std::size_t> index_of(pid_t pid) const;

    std::span<Entry> entries_;
    std::size_t mask_;
    std::size_t size_ = 0;
};

} // namespace forkd
