// SPDX-License-Identifier: MIT
#pragma once
// forkctl's side of the control commands, one row each (relayctl's token table, HAProxy's cli
// keywords): the usage line, the command's own options, how its words become the request, what
// it prints, how bash completes it and, when it is more than one request and one reply, how it
// runs. The name, the privilege and the wire arguments are the row of the same Command in
// common/control/control_commands.cpp.
#include "common/control/control_commands.hpp"

#include <nlohmann/json.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace forkd::ctl {

struct Invocation;  // command_line.hpp
struct Output;      // commands.hpp

// Options a command takes after its name, besides --json.
struct CommandOptions {
    bool wait = false;     // --wait, -w (and then --timeout bounds the wait)
    bool timeout = false;  // --timeout S
    bool delay = false;    // -d S, --delay S (top: seconds between frames)
    bool once = false;     // --once (top: one frame, no terminal handling)
};

struct CommandSpec {
    control::Command command;
    std::string_view arguments;  // for usage: "KEY VALUE", "[--wait] [--timeout S]"
    std::string_view summary;
    CommandOptions options;
    // The positional words into the request (throws UsageError); null: the command takes none.
    void (*parse_args)(const CommandSpec& spec, const std::vector<std::string>& args,
                       control::Request& request) = nullptr;
    // With --json: true prints the result itself, indented (data); false the reply line (actions).
    bool json_data = false;
    // What a successful reply shows people, newline included.
    std::string (*print)(const control::Request& request, const nlohmann::json& result) = nullptr;
    // bash completion of the next positional word after ARGS; null: the command's options.
    std::vector<std::string> (*complete)(const Invocation& invocation,
                                         const std::vector<std::string>& args) = nullptr;
    // Carries the invocation out and returns the exit code; null: one request, one reply.
    int (*run)(const Invocation& invocation, Output& output) = nullptr;

    // A command of forkctl's own, made of other requests (top): its name; `command` is then the
    // request it starts with. Empty for the rows of the control commands.
    std::string_view local_name = {};

    std::string_view name() const { return local_name.empty() ? control::command_name(command) : local_name; }
};

// In the order of common/control's command table, then forkctl's own commands.
std::span<const CommandSpec> command_table();
// The row of control command COMMAND; every control command has one.
const CommandSpec& command_spec(control::Command command);
// The row named NAME (exactly), control command or forkctl's own; null if none.
const CommandSpec* find_command_spec(std::string_view name);

} // namespace forkd::ctl
