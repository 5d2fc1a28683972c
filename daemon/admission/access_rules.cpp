// SPDX-License-Identifier: MIT
#include "daemon/admission/access_rules.hpp"

#include <algorithm>
#include <limits>

namespace forkd {
namespace {

template <class Bits>
Bits as_bits(const IpAddress& a) {
    Bits value = 0;
    const unsigned bytes = a.family == IpAddress::Family::v4 ? 4 : 16;
    for (unsigned i = 0; i < bytes; ++i) value = Bits(value << 8) | a.bytes[i];
    return value;
}

template <class Bits>
struct Block {
    Bits first, last;  // inclusive
    std::uint32_t rule;
};

} // namespace

std::string AccessRule::to_string() const {
    return std::string(action == RuleAction::allow ? "allow " : "deny ") + network.to_string();
}

AccessRules::AccessRules(std::vector<AccessRule> rules) : rules_(std::move(rules)) { index(); }

void AccessRules::index() {
    actions_.clear();
    for (const AccessRule& r : rules_) actions_.push_back(r.action);
    v4_ = build<std::uint32_t>(rules_, IpAddress::Family::v4);
    v6_ = build<AccessTable::V6>(rules_, IpAddress::Family::v6);
    table_.v4_starts = v4_.starts;
    table_.v4_winners = v4_.winners;
    table_.v6_starts = v6_.starts;
    table_.v6_winners = v6_.winners;
    table_.actions = actions_;
    table_.has_allow = std::find(actions_.begin(), actions_.end(), RuleAction::allow) != actions_.end();
}

template <class Bits>
AccessRules::Ranges<Bits> AccessRules::build(const std::vector<AccessRule>& rules,
                                             IpAddress::Family family) {
    constexpr unsigned width = sizeof(Bits) * 8;
    std::vector<Block<Bits>> blocks;
    for (std::size_t i = 0; i < rules.size(); ++i) {
        const Cidr& c = rules[i].network;
        if (c.network.family != family) continue;
        const Bits first = as_bits<Bits>(c.network);
        const Bits host = c.prefix == 0 ? std::numeric_limits<Bits>::max()
                                        : Bits((Bits(1) << (width - c.prefix)) - 1);
        blocks.push_back({first, Bits(first | host), std::uint32_t(i)});
    }
    // Outer blocks before the blocks they contain; of equal blocks, the first written first.
    std::sort(blocks.begin(), blocks.end(), [](const Block<Bits>& a, const Block<Bits>& b) {
        if (a.first != b.first) return a.first < b.first;
        if (a.last != b.last) return a.last > b.last;
        return a.rule < b.rule;
    });

    Ranges<Bits> out;
    // A range starting at `at` decided by `winner`; a later one at the same start replaces it,
    // and one with the winner of the range before it merges into that range.
    auto emit = [&out](Bits at, std::uint32_t winner) {
        if (!out.starts.empty() && out.starts.back() == at) {
            out.starts.pop_back();
            out.winners.pop_back();
        }
        if (!out.winners.empty() && out.winners.back() == winner) return;
        out.starts.push_back(at);
        out.winners.push_back(winner);
    };
    struct Open {
        Bits last;
        std::uint32_t winner;  // the first rule among this block and the blocks around it
    };
    std::vector<Open> open;
    // Close the innermost open block: after it, the block around it (or none) decides.
    auto close = [&] {
        const Open top = open.back();
        open.pop_back();
        if (top.last == std::numeric_limits<Bits>::max()) return;  // nothing after the end
        emit(Bits(top.last + 1), open.empty() ? AccessTable::no_winner : open.back().winner);
    };
    emit(0, AccessTable::no_winner);
    for (const Block<Bits>& b : blocks) {
        while (!open.empty() && open.back().last < b.first) close();
        const std::uint32_t winner = open.empty() ? b.rule : std::min(b.rule, open.back().winner);
        emit(b.first, winner);
        open.push_back({b.last, winner});
    }
    while (!open.empty()) close();
    out.starts.shrink_to_fit();
    out.winners.shrink_to_fit();
    return out;
}

namespace {

template <class Bits>
std::uint32_t lookup(std::span<const Bits> starts, std::span<const std::uint32_t> winners, Bits address) {
    // The last range starting at or before the address; starts[0] == 0 so there is one.
    const auto it = std::upper_bound(starts.begin(), starts.end(), address);
    if (it == starts.begin()) return AccessTable::no_winner;  // an empty table
    return winners[std::size_t(it - starts.begin()) - 1];
}

} // namespace

std::size_t AccessTable::first_match(const IpAddress& address) const {
    if (actions.empty()) return no_rule;
    const std::uint32_t w = address.family == IpAddress::Family::v4
                                ? lookup(v4_starts, v4_winners, as_bits<std::uint32_t>(address))
                                : lookup(v6_starts, v6_winners, as_bits<V6>(address));
    return w == no_winner || w >= actions.size() ? no_rule : w;
}

AccessTable::Verdict AccessTable::check(const IpAddress& address) const {
    const std::size_t rule = first_match(address);
    if (rule == no_rule) return {!has_allow, no_rule};
    return {actions[rule] == RuleAction::allow, rule};
}

} // namespace forkd
