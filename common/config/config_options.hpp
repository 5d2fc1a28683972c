// SPDX-License-Identifier: MIT
#pragma once
// The table of forkd's options: one row per long option. Everything about an option reads its
// row: the command line and the config file (Boost descriptions), --help, apply_option (file,
// command line and forkctl set), render_config (forkd -t, in table order) and set's keys.
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forkd {

struct Config;

// How an option's value is checked and stored, and how forkd -t shows it (option_value.hpp).
struct ValueRule {
    void (*apply)(Config&, const std::string&);       // throws std::invalid_argument(reason)
    std::vector<std::string> (*render)(const Config&);  // none: not set; nullptr: an action
    // Rows that share one ordered list (allow, deny) name the same function here: their values
    // are applied in the order written, not row by row, and forkd -t prints the list once, in
    // that order, as (name, value) lines.
    std::vector<std::pair<std::string, std::string>> (*render_in_order)(const Config&) = nullptr;
};

struct OptionSpec {
    enum class Arity { single, repeatable, flag };  // flag: "-f" alone means "yes"
    std::string_view name;
    char short_name;             // 0: none
    std::string_view argument;   // "FILE", "N"; empty for flags
    Arity arity;
    bool command_line_only;      // config, instance, check-config, version, help
    unsigned set_position;       // 0: only a reload changes it; N: forkctl set's N-th key
    ValueRule value;
    std::string_view help;
};

std::span<const OptionSpec> option_specs();
const OptionSpec* find_option(std::string_view name);  // by long name; nullptr if unknown
// The options forkctl set may change, in set_position order (the contract's order).
std::vector<std::string_view> runtime_settable_options();

// forkd --help.
std::string usage_text();

} // namespace forkd
