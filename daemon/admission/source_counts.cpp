// SPDX-License-Identifier: MIT
#include "daemon/admission/source_counts.hpp"

#include <netinet/in.h>

#include <bit>
#include <cstring>
#include <stdexcept>

namespace forkd {
namespace {

enum : std::uint8_t { tag_ipv4 = 4, tag_ipv6 = 6, tag_uid = 'u' };

SourceKey tagged(std::uint8_t tag, const void* data, std::size_t size) {
    SourceKey key;
    key.bytes[0] = tag;
    std::memcpy(key.bytes.data() + 4, data, size);
    return key;
}

} // namespace

SourceKey SourceKey::of_address(const sockaddr* address, socklen_t length) {
    if (address->sa_family == AF_INET && length >= socklen_t(sizeof(sockaddr_in))) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(address);
        return tagged(tag_ipv4, &in->sin_addr, sizeof in->sin_addr);
    }
    if (address->sa_family == AF_INET6 && length >= socklen_t(sizeof(sockaddr_in6))) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return tagged(tag_ipv4, in6->sin6_addr.s6_addr + 12, 4);
        return tagged(tag_ipv6, &in6->sin6_addr, sizeof in6->sin6_addr);
    }
    return {};
}

SourceKey SourceKey::of_address(const sockaddr* address, socklen_t length, SourcePrefix prefix) {
    const auto ip = IpAddress::of_sockaddr(address, length);
    return ip ? of_ip(*ip, prefix) : SourceKey{};
}

SourceKey SourceKey::of_ip(const IpAddress& address, SourcePrefix prefix) {
    const bool v4 = address.family == IpAddress::Family::v4;
    const IpAddress grouped = address.masked(v4 ? prefix.v4 : prefix.v6);
    return tagged(v4 ? tag_ipv4 : tag_ipv6, grouped.bytes.data(), v4 ? 4 : 16);
}

SourceKey SourceKey::of_uid(uid_t uid) { return tagged(tag_uid, &uid, sizeof uid); }

bool SourceKey::empty() const { return bytes[0] == 0; }

std::size_t SourceCounts::entries_for(std::size_t connections) {
    return std::bit_ceil(connections * 2 < 16 ? std::size_t(16) : connections * 2);
}

SourceCounts::SourceCounts(std::span<Entry> storage) : entries_(storage), mask_(storage.size() - 1) {
    if (storage.empty() || !std::has_single_bit(storage.size()))
        throw std::invalid_argument("SourceCounts: storage size must be a power of two");
}

SourceCounts::SourceCounts(std::span<Entry> storage, std::uint32_t& sources) : SourceCounts(storage) {
    size_ = &sources;
}

void SourceCounts::clear() {
    for (Entry& e : entries_) e = {};
    *size_ = 0;
}

// FNV-1a over the key: addresses of one subnet differ in their last bytes only.
std::size_t SourceCounts::home(const SourceKey& key) const {
    std::uint64_t hash = 0xcbf29ce484222325ull;
    for (std::uint8_t b : key.bytes) hash = (hash ^ b) * 0x100000001b3ull;
    return std::size_t(hash ^ (hash >> 32)) & mask_;
}

std::size_t SourceCounts::probe(const SourceKey& key) const {
    std::size_t i = home(key);
    while (!entries_[i].key.empty() && entries_[i].key != key) i = next(i);
    return i;
}

std::uint32_t SourceCounts::count(const SourceKey& key) const {
    if (key.empty()) return 0;
    const Entry& e = entries_[probe(key)];
    return e.key.empty() ? 0 : e.count;
}

bool SourceCounts::add(const SourceKey& key) {
    if (key.empty()) return false;
    Entry& e = entries_[probe(key)];
    if (!e.key.empty()) {
        ++e.count;
        return true;
    }
    // One entry always stays free, so that every probe ends.
    if (std::size_t{*size_} + 1 >= entries_.size()) return false;
    e = {key, 1};
    ++*size_;
    return true;
}

void SourceCounts::remove(const SourceKey& key) {
    if (key.empty()) return;
    std::size_t hole = probe(key);
    if (entries_[hole].key.empty()) return;
    if (--entries_[hole].count > 0) return;
    // Backward-shift deletion, as in PidTable::take.
    for (std::size_t i = next(hole); !entries_[i].key.empty(); i = next(i)) {
        const std::size_t h = home(entries_[i].key);
        if (((i - h) & mask_) >= ((i - hole) & mask_)) {
            entries_[hole] = entries_[i];
            hole = i;
        }
    }
    entries_[hole] = {};
    --*size_;
}

} // namespace forkd
