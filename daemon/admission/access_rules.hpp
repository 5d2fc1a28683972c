// SPDX-License-Identifier: MIT
#pragma once
// An ordered allow/deny list (`allow = CIDR`, `deny = CIDR`): the first rule that matches, in
// the order written, decides; a client matching none is denied if any allow rule exists, else
// allowed. Also the peer list of `proxy-from` (allow rules only).
//
// Lookup is a binary search over disjoint address ranges, each carrying the first rule that
// covers it, built once per rule set (CIDR blocks nest or are disjoint, so one sweep over
// the blocks sorted by start finds each range's winner). Thousands of rules cost ~log2(2N)
// comparisons and a few hundred kilobytes, no allocation per lookup.
#include "daemon/admission/cidr.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace forkd {

enum class RuleAction : std::uint8_t { allow = 1, deny = 2 };

struct AccessRule {
    RuleAction action = RuleAction::allow;
    Cidr network;
    std::string to_string() const;  // "allow 10.0.0.0/8"
    bool operator==(const AccessRule&) const = default;
};

// The matcher itself, over storage it does not own: AccessRules' vectors in the master, a
// read-only mapping in forkd-spawner (policy_blob.hpp). Copying it copies pointers.
// Range i covers [starts[i], starts[i+1]) and is decided by winners[i] (no_winner: none);
// starts[0] is 0, so every address falls in a range.
struct AccessTable {
    static constexpr std::size_t no_rule = SIZE_MAX;
    static constexpr std::uint32_t no_winner = UINT32_MAX;
    using V6 = unsigned __int128;

    struct Verdict {
        bool allowed = true;
        std::size_t rule = no_rule;  // the deciding rule's index in written order, or no_rule
    };

    std::span<const std::uint32_t> v4_starts, v4_winners;
    std::span<const V6> v6_starts;
    std::span<const std::uint32_t> v6_winners;
    std::span<const RuleAction> actions;  // per rule, in written order
    bool has_allow = false;

    // The first rule in written order whose network contains the address, or no_rule.
    std::size_t first_match(const IpAddress& address) const;
    // If any allow rule exists, an address matching none is denied, else allowed.
    Verdict check(const IpAddress& address) const;
    bool empty() const { return actions.empty(); }
};

class AccessRules {
public:
    static constexpr std::size_t no_rule = AccessTable::no_rule;
    using Verdict = AccessTable::Verdict;

    AccessRules() { index(); }
    explicit AccessRules(std::vector<AccessRule> rules);
    AccessRules(const AccessRules& other) : AccessRules(other.rules_) {}
    AccessRules& operator=(const AccessRules& other) {
        if (this != &other) *this = AccessRules(other.rules_);
        return *this;
    }
    AccessRules(AccessRules&&) = default;  // vectors keep their buffers: the table stays valid
    AccessRules& operator=(AccessRules&&) = default;

    std::size_t first_match(const IpAddress& address) const { return table_.first_match(address); }
    Verdict check(const IpAddress& address) const { return table_.check(address); }
    const AccessTable& table() const { return table_; }

    const std::vector<AccessRule>& rules() const { return rules_; }
    bool empty() const { return rules_.empty(); }
    std::size_t size() const { return rules_.size(); }
    bool has_allow() const { return table_.has_allow; }

private:
    template <class Bits>
    struct Ranges {
        std::vector<Bits> starts;
        std::vector<std::uint32_t> winners;
    };
    template <class Bits>
    static Ranges<Bits> build(const std::vector<AccessRule>& rules, IpAddress::Family family);
    void index();

    std::vector<AccessRule> rules_;
    std::vector<RuleAction> actions_;
    Ranges<std::uint32_t> v4_;
    Ranges<AccessTable::V6> v6_;
    AccessTable table_;
};

} // namespace forkd
