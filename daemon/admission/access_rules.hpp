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
#include <string>
#include <vector>

namespace forkd {

enum class RuleAction : std::uint8_t { allow, deny };

struct AccessRule {
    RuleAction action = RuleAction::allow;
    Cidr network;
    std::string to_string() const;  // "allow 10.0.0.0/8"
    bool operator==(const AccessRule&) const = default;
};

class AccessRules {
public:
    static constexpr std::size_t no_rule = SIZE_MAX;

    struct Verdict {
        bool allowed = true;
        std::size_t rule = no_rule;  // the deciding rule's index in written order, or no_rule
    };

    AccessRules() = default;
    explicit AccessRules(std::vector<AccessRule> rules);

    // The first rule in written order whose network contains the address, or no_rule.
    std::size_t first_match(const IpAddress& address) const;
    Verdict check(const IpAddress& address) const;

    const std::vector<AccessRule>& rules() const { return rules_; }
    bool empty() const { return rules_.empty(); }
    std::size_t size() const { return rules_.size(); }
    bool has_allow() const { return has_allow_; }

private:
    // Range i covers [starts[i], starts[i+1]) and is decided by winners[i] (no_rule: none).
    // starts[0] is always 0, so every address falls in a range.
    template <class Bits>
    struct Ranges {
        std::vector<Bits> starts;
        std::vector<std::uint32_t> winners;
    };
    static constexpr std::uint32_t none = UINT32_MAX;

    template <class Bits>
    static Ranges<Bits> build(const std::vector<AccessRule>& rules, IpAddress::Family family);
    template <class Bits>
    static std::uint32_t lookup(const Ranges<Bits>& ranges, Bits address);

    std::vector<AccessRule> rules_;
    bool has_allow_ = false;
    Ranges<std::uint32_t> v4_;
    Ranges<unsigned __int128> v6_;
};

} // namespace forkd
