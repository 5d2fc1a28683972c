// SPDX-License-Identifier: MIT
#include "ctl/command_arguments.hpp"

#include "common/control/control_protocol.hpp"
#include "ctl/command_line.hpp"

#include <charconv>

namespace forkd::ctl {

namespace {

// Says what the argument would be: no pointer to --help needed.
UsageError missing(const CommandSpec& spec, std::string_view hint) {
    return UsageError("missing argument: " + std::string(spec.name()) + " " + std::string(spec.arguments) +
                          " (" + std::string(hint) + ")",
                      UsageError::Lists::valid_choices);
}

std::string join(std::span<const std::string_view> words) {
    std::string out;
    for (std::string_view word : words) out += (out.empty() ? "" : ", ") + std::string(word);
    return out;
}

} // namespace

void parse_set_arguments(const CommandSpec& spec, const std::vector<std::string>& args, control::Request& request) {
    if (args.empty()) throw missing(spec, "valid keys: " + join(control::set_keys()));
    request.key = std::string(match_word(args[0], control::set_keys(), "key"));
    if (args.size() < 2) throw missing(spec, "no value given for " + request.key);
    if (args.size() > 2) throw UsageError("too many arguments for 'set': '" + args[2] + "'");
    request.value = args[1];
}

void parse_kill_arguments(const CommandSpec& spec, const std::vector<std::string>& args, control::Request& request) {
    if (args.empty()) throw missing(spec, "a connection id from 'forkctl list'");
    if (args.size() > 1) throw UsageError("too many arguments for 'kill': '" + args[1] + "'");
    const std::string& text = args[0];
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), request.id);
    if (text.empty() || error != std::errc() || end != text.data() + text.size())
        throw UsageError("kill: ID must be a connection id (a number from 'forkctl list'), got '" + text + "'",
                         UsageError::Lists::valid_choices);
}

} // namespace forkd::ctl
