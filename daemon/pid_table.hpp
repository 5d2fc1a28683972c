#pragma once
// The spawner's running handlers: pid → connection id, in storage the caller provides (memory
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
    };
    // Entries needed to hold `handlers` pids with the table at most half full.
    static std::size_t entries_for(std::size_t handlers);

    // `storage.size()` must be a power of two, as entries_for() gives; its entries empty.
    explicit PidTable(std::span<Entry> storage);

    // False if the table is full or the pid is already there.
    bool insert(pid_t pid, std::uint64_t id);
    // The pid's connection id, removed from the table.
    std::optional<std::uint64_t> take(pid_t pid);
    // The handler of connection `id`, or 0. A scan: for rare requests (signals).
    pid_t pid_of(std::uint64_t id) const;
    std::size_t size() const { return size_; }

    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (const Entry& e : entries_)
            if (e.pid) fn(e.pid, e.id);
    }

private:
    std::size_t home(pid_t pid) const;
    std::size_t next(std::size_t i) const { return (i + 1) & mask_; }
    std::optional<std::size_t> find(pid_t pid) const;

    std::span<Entry> entries_;
    std::size_t mask_;
    std::size_t size_ = 0;
};

} // namespace forkd
