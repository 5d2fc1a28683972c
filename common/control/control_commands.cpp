// SPDX-License-Identifier: MIT
#include "common/control/control_commands.hpp"

#include "common/control/control_protocol.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace forkd::control {

namespace {

constexpr std::array<ArgSpec, 2> set_args = {{
    {"key", ArgType::word, &Request::key, nullptr, set_keys},
    {"value", ArgType::text, &Request::value},
}};

constexpr std::array<ArgSpec, 1> kill_args = {{
    {"id", ArgType::count, nullptr, &Request::id},
}};

constexpr auto rows = std::to_array<CommandRow>({
    {Command::status, "status", false, {}},
    {Command::list, "list", false, {}},
    {Command::set, "set", true, set_args},
    {Command::drain, "drain", true, {}},
    {Command::resume, "resume", true, {}},
    {Command::reload, "reload", true, {}},
    {Command::stop, "stop", true, {}},
    {Command::kill, "kill", true, kill_args},
    {Command::metrics, "metrics", false, {}},
    {Command::upgrade, "upgrade", true, {}},
});

const CommandRow* find_row(Command command) {
    auto it = std::find_if(rows.begin(), rows.end(), [command](const CommandRow& row) { return row.command == command; });
    return it == rows.end() ? nullptr : &*it;
}

} // namespace

std::span<const CommandRow> command_rows() { return rows; }

const CommandRow& command_row(Command command) {
    if (const CommandRow* row = find_row(command)) return *row;
    throw std::logic_error("control command without a row in the command table");
}

std::span<const Command> all_commands() {
    static const auto commands = [] {
        std::array<Command, rows.size()> out{};
        std::transform(rows.begin(), rows.end(), out.begin(), [](const CommandRow& row) { return row.command; });
        return out;
    }();
    return commands;
}

std::string_view command_name(Command command) {
    const CommandRow* row = find_row(command);
    return row ? row->name : "unknown";
}

std::optional<Command> parse_command(std::string_view name) {
    for (const CommandRow& row : rows)
        if (row.name == name) return row.command;
    return std::nullopt;
}

bool changes_state(Command command) {
    const CommandRow* row = find_row(command);
    return !row || row->privileged;
}

} // namespace forkd::control
