// SPDX-License-Identifier: MIT
#include "daemon/admission/policy_blob.hpp"

#include <cstdint>
#include <cstring>

namespace forkd {
namespace {

constexpr std::uint32_t magic = 0x50414b46;  // "FKAP"
constexpr std::uint32_t version = 1;

struct Header {
    std::uint32_t magic, version, v4_ranges, v6_ranges, rules, busy_length, has_allow, reserved;
};
static_assert(sizeof(Header) == 32);

std::size_t total_size(const Header& h) {
    return sizeof(Header) + std::size_t(h.v6_ranges) * 16 + std::size_t(h.v4_ranges) * 8 +
           std::size_t(h.v6_ranges) * 4 + h.rules + h.busy_length;
}

template <class T>
void append(std::vector<std::byte>& out, std::span<const T> items) {
    const auto* p = reinterpret_cast<const std::byte*>(items.data());
    out.insert(out.end(), p, p + items.size_bytes());
}

template <class T>
std::span<const T> take(const std::byte*& at, std::size_t count) {
    const auto* items = reinterpret_cast<const T*>(at);
    at += count * sizeof(T);
    return {items, count};
}

} // namespace

std::vector<std::byte> encode_policy(const AccessTable& rules, std::string_view busy_message) {
    const Header h{magic,
                   version,
                   std::uint32_t(rules.v4_starts.size()),
                   std::uint32_t(rules.v6_starts.size()),
                   std::uint32_t(rules.actions.size()),
                   std::uint32_t(busy_message.size()),
                   rules.has_allow ? 1u : 0u,
                   0};
    std::vector<std::byte> out;
    out.reserve(total_size(h));
    append(out, std::span<const Header>(&h, 1));
    append(out, rules.v6_starts);
    append(out, rules.v4_starts);
    append(out, rules.v4_winners);
    append(out, rules.v6_winners);
    append(out, rules.actions);
    append(out, std::span<const char>(busy_message.data(), busy_message.size()));
    return out;
}

std::optional<PolicyView> decode_policy(std::span<const std::byte> bytes) {
    Header h;
    if (bytes.size() < sizeof h || reinterpret_cast<std::uintptr_t>(bytes.data()) % 16 != 0)
        return std::nullopt;
    std::memcpy(&h, bytes.data(), sizeof h);
    if (h.magic != magic || h.version != version || h.has_allow > 1) return std::nullopt;
    // Each count is at most the size itself: no sum below can overflow.
    if (h.v4_ranges > bytes.size() || h.v6_ranges > bytes.size() || h.rules > bytes.size() ||
        h.busy_length > bytes.size() || total_size(h) != bytes.size())
        return std::nullopt;
    const std::byte* at = bytes.data() + sizeof h;
    PolicyView view;
    view.rules.v6_starts = take<AccessTable::V6>(at, h.v6_ranges);
    view.rules.v4_starts = take<std::uint32_t>(at, h.v4_ranges);
    view.rules.v4_winners = take<std::uint32_t>(at, h.v4_ranges);
    view.rules.v6_winners = take<std::uint32_t>(at, h.v6_ranges);
    view.rules.actions = take<RuleAction>(at, h.rules);
    for (RuleAction a : view.rules.actions)
        if (a != RuleAction::allow && a != RuleAction::deny) return std::nullopt;
    view.rules.has_allow = h.has_allow != 0;
    view.busy_message = {reinterpret_cast<const char*>(at), h.busy_length};
    return view;
}

} // namespace forkd
