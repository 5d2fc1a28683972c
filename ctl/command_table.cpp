// SPDX-License-Identifier: MIT
#include "ctl/command_table.hpp"

#include "ctl/command_arguments.hpp"
#include "ctl/commands.hpp"
#include "ctl/completion.hpp"
#include "ctl/human_format.hpp"
#include "ctl/top_command.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace forkd::ctl {

namespace {

using control::Command;
using control::Request;
using nlohmann::json;

constexpr CommandOptions no_options{};
constexpr CommandOptions timeout_option{.timeout = true};
constexpr CommandOptions wait_options{.wait = true, .timeout = true};
constexpr CommandOptions top_options{.delay = true, .once = true};

const auto table = std::to_array<CommandSpec>({
    {Command::status, "", "state, limits, counters and listeners", no_options, nullptr, true,
     [](const Request&, const json& result) { return format_status(result); }},
    {Command::list, "", "active connections: id, pid, peer, age, state, bytes", no_options, nullptr, true,
     [](const Request&, const json& result) { return format_list(result); }},
    {Command::set, "KEY VALUE", "change a limit at runtime (for new connections)", no_options,
     parse_set_arguments, false,
     [](const Request& request, const json&) { return request.key + " set to " + request.value + "\n"; },
     complete_set_arguments},
    {Command::drain, "[--wait] [--timeout S]", "stop accepting; --wait: until none is active", wait_options,
     nullptr, false,
     [](const Request&, const json&) { return std::string("draining: forkd no longer accepts new connections\n"); },
     nullptr, run_drain},
    {Command::resume, "", "accept new connections again", no_options, nullptr, false,
     [](const Request&, const json&) { return std::string("resumed: forkd accepts new connections\n"); }},
    {Command::reload, "", "re-read the configuration file", no_options, nullptr, false,
     [](const Request&, const json& result) { return format_reload(result); }},
    {Command::stop, "[--timeout S]", "graceful stop; returns once forkd has exited", timeout_option, nullptr,
     false, [](const Request&, const json&) { return std::string("forkd stopped\n"); }, nullptr, run_stop},
    {Command::kill, "ID", "end one connection (its handler gets SIGTERM)", no_options, parse_kill_arguments,
     false,
     [](const Request& request, const json&) { return "connection " + std::to_string(request.id) + " killed\n"; },
     complete_connection_ids},
    {Command::metrics, "", "the Prometheus metrics, as the metrics-listen endpoint serves them", no_options,
     nullptr, true, [](const Request&, const json& result) { return result.is_string() ? result.get<std::string>() : result.dump() + "\n"; }},
    {Command::upgrade, "[--timeout S]", "re-execute the installed forkd in place, keeping every connection",
     timeout_option, nullptr, false, [](const Request&, const json& result) { return format_upgrade(result); },
     nullptr, run_upgrade},
    // forkctl's own commands (local_name): made of the requests above.
    {Command::list, "[-d S] [--once]", "live view of the state, rates and connections (q quits)", top_options,
     nullptr, false, [](const Request&, const json&) { return std::string(); }, nullptr, run_top, "top"},
});

} // namespace

std::span<const CommandSpec> command_table() { return table; }

const CommandSpec& command_spec(control::Command command) {
    auto it = std::find_if(table.begin(), table.end(), [command](const CommandSpec& spec) {
        return spec.command == command && spec.local_name.empty();
    });
    if (it == table.end()) throw std::logic_error("control command without a row in forkctl's table");
    return *it;
}

const CommandSpec* find_command_spec(std::string_view name) {
    auto it = std::find_if(table.begin(), table.end(), [name](const CommandSpec& spec) { return spec.name() == name; });
    return it == table.end() ? nullptr : &*it;
}

} // namespace forkd::ctl
