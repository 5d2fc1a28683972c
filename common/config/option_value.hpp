// SPDX-License-Identifier: MIT
#pragma once
// How one option's value is parsed, where in Config it lands, and how `forkd -t` shows it: the
// value column of the option table (config_options.cpp). A row names a shape (scalar, optional,
// list), a parser with its bounds, a formatter and the field, as in systemd's gperf tables
// (`Time.PollIntervalMinSec, config_parse_sec, 0, offsetof(Manager, poll_interval_min_usec)`):
//   scalar<count<unsigned, kMaxSeconds>, decimal<unsigned>, &Config::shutdown_timeout_s>
// Parsers throw std::invalid_argument with the reason only (see config_values.hpp).
#include "common/base/error.hpp"
#include "common/config/config.hpp"
#include "common/config/config_options.hpp"
#include "common/config/config_values.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace forkd::option_value {

// ---------------------------------------------------------------- where a value lands
// A path of member pointers from Config to the field: &Config::limits, &RuntimeLimits::overload.
template <auto... Path>
auto& field(Config& config) { return (config .* ... .* Path); }
template <auto... Path>
const auto& field(const Config& config) { return (config .* ... .* Path); }

// ---------------------------------------------------------------- parsers
inline std::string text(std::string_view value) { return std::string(value); }

// Text accepted as it is once `Check` has passed it.
template <auto Check>
std::string checked(std::string_view value) {
    Check(value);
    return std::string(value);
}

// Decimal 0..Max, stored as T.
template <class T, unsigned Max>
T count(std::string_view value) { return static_cast<T>(config_values::parse_count(value, Max)); }

// Decimal Min..Max bytes.
template <unsigned Min, unsigned Max>
unsigned bytes(std::string_view value) { return config_values::parse_byte_count(value, Min, Max); }

// One of a few names: Parse returns an optional, Choices lists them for the error.
template <auto Parse, const char* Choices>
auto one_of(std::string_view value) {
    if (auto parsed = Parse(value)) return *parsed;
    std::string reason = quoted(value);
    reason += " is not one of ";
    reason += Choices;
    throw std::invalid_argument(reason);
}

// ---------------------------------------------------------------- formatters
template <class T>
std::string decimal(T value) { return std::to_string(value); }

// ---------------------------------------------------------------- shapes
using Values = std::vector<std::string>;  // as a config file would hold them; none: not set
using Rule = ValueRule;

// An empty rendering ("" for config when none, no exec) means the option is not set.
inline Values shown(std::string_view text) { return text.empty() ? Values{} : Values{std::string(text)}; }

// One value; a later one replaces it.
template <auto Parse, auto Format, auto... Path>
constexpr Rule scalar{
    [](Config& c, const std::string& v) { field<Path...>(c) = Parse(v); },
    [](const Config& c) { return shown(Format(field<Path...>(c))); },
};

// An std::optional field: nullopt until given.
template <auto Parse, auto Format, auto... Path>
constexpr Rule optional{
    [](Config& c, const std::string& v) { field<Path...>(c) = Parse(v); },
    [](const Config& c) {
        const auto& value = field<Path...>(c);
        return value ? shown(Format(*value)) : Values{};
    },
};

// A repeatable option: each value is appended.
template <auto Parse, auto Format, auto... Path>
constexpr Rule list{
    [](Config& c, const std::string& v) { field<Path...>(c).push_back(Parse(v)); },
    [](const Config& c) {
        Values values;
        for (const auto& item : field<Path...>(c)) values.emplace_back(Format(item));
        return values;
    },
};

// allow and deny: one ordered list of rules; each row adds its action and renders its own.
inline std::vector<std::pair<std::string, std::string>> access_rule_lines(const Config& c) {
    std::vector<std::pair<std::string, std::string>> lines;
    for (const AccessRule& rule : c.access_rules)
        lines.emplace_back(rule.action == RuleAction::allow ? "allow" : "deny", rule.network.to_string());
    return lines;
}
template <RuleAction Action>
constexpr Rule access_rule{
    [](Config& c, const std::string& v) { c.access_rules.push_back({Action, config_values::parse_network(v)}); },
    [](const Config& c) {
        Values values;
        for (const AccessRule& rule : c.access_rules)
            if (rule.action == Action) values.push_back(rule.network.to_string());
        return values;
    },
    access_rule_lines,
};

// -t, -V, -h: actions of the command line, nothing to store or show.
constexpr Rule action{[](Config&, const std::string&) {}, nullptr};

} // namespace forkd::option_value
