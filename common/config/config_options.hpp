// SPDX-License-Identifier: MIT
#pragma once
// The table of forkd's options: one row per long option, used for the command line, the config
// file, --help and render_config's order.
#include <span>
#include <string>
#include <string_view>

namespace forkd {

struct OptionSpec {
    enum class Arity { single, repeatable, flag };  // flag: "-f" alone means "yes"
    std::string_view name;
    char short_name;             // 0: none
    std::string_view argument;   // "FILE", "N"; empty for flags
    Arity arity;
    bool command_line_only;      // config, instance, check-config, version, help
    std::string_view help;
};

std::span<const OptionSpec> option_specs();
const OptionSpec* find_option(std::string_view name);  // by long name; nullptr if unknown

// forkd --help.
std::string usage_text();

} // namespace forkd
