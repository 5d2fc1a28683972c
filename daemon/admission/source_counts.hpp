// SPDX-License-Identifier: MIT
#pragma once
// Live connections per source (client IP, or peer uid on UNIX sockets), for max-per-source, in
// storage the caller provides, so that it never allocates: the scoreboard's shared mapping keeps
// the one table every accepting process counts in (scoreboard.hpp). Open addressing with linear
// probing and backward-shift removal, like PidTable; a source whose count drops to zero leaves
// the table.
#include "common/base/runtime_limits.hpp"
#include "daemon/admission/cidr.hpp"

#include <sys/socket.h>
#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace forkd {

// A source as fixed bytes: a tag (IPv4, IPv6 or uid) and the address or uid.
struct SourceKey {
    std::array<std::uint8_t, 20> bytes{};  // all zero: no source (an empty entry)

    // IPv4 and IPv6 clients by address (an IPv4-mapped IPv6 address counts as its IPv4
    // address), UNIX clients by uid. nullopt-like empty key for anything else.
    static SourceKey of_address(const sockaddr* address, socklen_t length);
    // Grouped by source-prefix: the address's first prefix.v4 or prefix.v6 bits.
    static SourceKey of_address(const sockaddr* address, socklen_t length, SourcePrefix prefix);
    static SourceKey of_ip(const IpAddress& address, SourcePrefix prefix = {});
    static SourceKey of_uid(uid_t uid);
    bool empty() const;
    bool operator==(const SourceKey&) const = default;
};

class SourceCounts {
public:
    struct Entry {
        SourceKey key;  // empty: a free entry
        std::uint32_t count = 0;
    };
    // Entries needed for `connections` live connections with the table at most half full.
    static std::size_t entries_for(std::size_t connections);

    // `storage.size()` must be a power of two, as entries_for() gives; its entries empty.
    explicit SourceCounts(std::span<Entry> storage);
    // The same over a table whose number of sources is kept beside it, by the caller (in shared
    // memory, so that every process that maps it agrees); `sources` must match the storage.
    SourceCounts(std::span<Entry> storage, std::uint32_t& sources);
    SourceCounts(const SourceCounts&) = delete;
    SourceCounts& operator=(const SourceCounts&) = delete;

    std::uint32_t count(const SourceKey& key) const;
    // False if the key is empty or the table is full.
    bool add(const SourceKey& key);
    // Nothing happens for a key not in the table.
    void remove(const SourceKey& key);
    // Empties the table (the scoreboard's repair rebuilds it from the slots).
    void clear();
    std::size_t sources() const { return *size_; }

private:
    std::size_t home(const SourceKey& key) const;
    std::size_t next(std::size_t i) const { return (i + 1) & mask_; }
    std::size_t probe(const SourceKey& key) const;  // its entry, or the free entry ending its run

    std::span<Entry> entries_;
    std::size_t mask_;
    std::uint32_t own_size_ = 0;
    std::uint32_t* size_ = &own_size_;
};

} // namespace forkd
