// SPDX-License-Identifier: MIT
#pragma once
// The control commands, one row each, read by both sides: the name on the wire, whether the
// command changes the daemon (the permission check and the audit log read this), and its
// arguments with their types (the request parser and encoder read these). forkd's handler and
// forkctl's usage, printer and completion are rows of their own, keyed by Command
// (daemon/control/control_dispatch.cpp, ctl/command_table.cpp): a new command is a value here,
// a row on each side and the functions they name.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace forkd::control {

enum class Command { status, list, set, drain, resume, reload, stop, kill, metrics, upgrade };

struct Request {
    Command command = Command::status;
    std::string key;        // set
    std::string value;      // set (numbers sent by scripts arrive as their decimal text)
    std::uint64_t id = 0;   // kill
    bool operator==(const Request&) const = default;
};

enum class ArgType {
    word,   // a string, one of the row's words() ("set"'s key)
    text,   // a string or an integer, kept as text; non-empty, no control characters
    count,  // a non-negative integer
};

struct ArgSpec {
    std::string_view name;
    ArgType type;
    std::string Request::*text = nullptr;                     // word, text: where it lands
    std::uint64_t Request::*number = nullptr;                 // count: where it lands
    std::span<const std::string_view> (*words)() = nullptr;   // word: the valid ones
};

struct CommandRow {
    Command command;
    std::string_view name;
    bool privileged;                // changes the daemon: needs uid 0, forkd's uid or the group
    std::span<const ArgSpec> args;  // all required; none: the command takes no arguments
};

// In the order of the contract (and of usage and error messages).
std::span<const CommandRow> command_rows();
// The row of COMMAND; every Command has one.
const CommandRow& command_row(Command command);

std::span<const Command> all_commands();
std::string_view command_name(Command command);
std::optional<Command> parse_command(std::string_view name);
// The row's privileged column: status, list and metrics only read, every other command needs privilege.
bool changes_state(Command command);

} // namespace forkd::control
