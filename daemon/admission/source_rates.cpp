// SPDX-License-Identifier: MIT
#include "daemon/admission/source_rates.hpp"

#include <bit>
#include <stdexcept>

namespace forkd {

std::size_t SourceRates::entries_for(std::size_t sources) {
    return std::bit_ceil(sources < ways ? ways : sources);
}

SourceRates::SourceRates(std::span<Entry> storage) : entries_(storage), sets_(storage.size() / ways) {
    if (storage.size() < ways || !std::has_single_bit(storage.size()))
        throw std::invalid_argument("SourceRates: storage size must be a power of two of at least 8");
}

SourceRates::SourceRates(std::span<Entry> storage, Rate& table_rate) : SourceRates(storage) {
    table_rate_ = &table_rate;
}

void SourceRates::set_rate(Rate rate) {
    model_.set_rate(rate);
    if (*table_rate_ == rate) return;
    for (Entry& e : entries_) e = {};
    *table_rate_ = rate;
}

std::size_t SourceRates::set_of(const SourceKey& key) const {
    std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
    for (std::uint8_t b : key.bytes) hash = (hash ^ b) * 0x100000001b3ull;
    return std::size_t(hash ^ (hash >> 29)) & (sets_ - 1);
}

SourceRates::Entry* SourceRates::find(const SourceKey& key, std::size_t set) const {
    Entry* first = entries_.data() + set * ways;
    for (std::size_t i = 0; i < ways; ++i)
        if (first[i].key == key) return first + i;
    return nullptr;
}

bool SourceRates::available(const SourceKey& key, std::int64_t now_ns) const {
    if (!model_.rate().limited() || key.empty()) return true;
    const Entry* e = find(key, set_of(key));
    if (!e) return true;
    TokenBucket bucket = model_;
    bucket.restore(e->tat_ns);
    return bucket.available(now_ns);
}

bool SourceRates::take(const SourceKey& key, std::int64_t now_ns) {
    if (!model_.rate().limited() || key.empty()) return true;
    const std::size_t set = set_of(key);
    Entry* e = find(key, set);
    if (!e) {
        // A free or refilled entry, else the one nearest to full.
        Entry* first = entries_.data() + set * ways;
        e = first;
        for (std::size_t i = 0; i < ways; ++i) {
            if (first[i].key.empty() || first[i].tat_ns <= now_ns) {
                e = first + i;
                break;
            }
            if (first[i].tat_ns < e->tat_ns) e = first + i;
        }
        *e = {key, 0};
    }
    TokenBucket bucket = model_;
    bucket.restore(e->tat_ns);
    if (!bucket.take(now_ns)) return false;
    e->tat_ns = bucket.tat_ns();
    return true;
}

} // namespace forkd
