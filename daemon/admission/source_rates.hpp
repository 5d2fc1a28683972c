// SPDX-License-Identifier: MIT
#pragma once
// max-per-source-rate: one token bucket per source, in storage the caller provides, so that it
// never allocates: the scoreboard's shared mapping keeps the one table every accepting process
// takes tokens from (scoreboard.hpp), or a process keeps its own (the master's exec'd handlers). A set-associative
// table: a source hashes to a set of `ways` entries; a source absent from its set has a full
// bucket, and so does one whose bucket has refilled (its entry may be reused). When every entry
// of a set holds a bucket still refilling, the one nearest to full is forgotten: a flood of
// more distinct sources than the table holds can cost a source its history, never a refusal.
#include "common/base/runtime_limits.hpp"
#include "daemon/admission/source_counts.hpp"
#include "daemon/admission/token_bucket.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace forkd {

class SourceRates {
public:
    static constexpr std::size_t ways = 8;
    struct Entry {
        SourceKey key;            // empty: free
        std::int64_t tat_ns = 0;  // the source's TokenBucket state
    };
    // Entries for `sources` sources (a power of two, at least one set).
    static std::size_t entries_for(std::size_t sources);
    // Sources an acceptor (forkd-spawner, forkd-worker) remembers buckets of at once.
    static constexpr std::size_t acceptor_sources = 16384;

    explicit SourceRates(std::span<Entry> storage);
    // The same over buckets filled under `table_rate`, kept beside them by the caller (in shared
    // memory): several processes share one table, and each sets the rate it was configured with.
    SourceRates(std::span<Entry> storage, Rate& table_rate);
    SourceRates(const SourceRates&) = delete;
    SourceRates& operator=(const SourceRates&) = delete;

    // A rate other than the table's forgets every source's history (a new rate starts full);
    // the table's own rate, set again by another sharer, keeps it.
    void set_rate(Rate rate);
    Rate rate() const { return model_.rate(); }
    // Whether the source may connect now; takes its token if so.
    bool take(const SourceKey& key, std::int64_t now_ns);
    // Whether it could, without taking (the gate checks every limit before it takes).
    bool available(const SourceKey& key, std::int64_t now_ns) const;

private:
    std::size_t set_of(const SourceKey& key) const;
    Entry* find(const SourceKey& key, std::size_t set) const;

    std::span<Entry> entries_;
    std::size_t sets_;
    TokenBucket model_;  // the rate; each entry's state is restored into a copy of it
    Rate own_rate_;
    Rate* table_rate_ = &own_rate_;  // the rate the entries were filled under
};

} // namespace forkd
